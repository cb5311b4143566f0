import Autograd

// Batch assembly: N equally sized CHW images → one [N, C, H, W] tensor.

/// Stacks images into a tensor of shape `[N, C, H, W]` (image `n` occupies the `n`-th
/// `C·H·W` block, its planar pixels copied as they are).
///
/// - Throws: `TransformError` when `images` is empty, or naming the first image whose
///   size differs from image 0, e.g. `makeBatch: image 3 is 3×28×28 (C×H×W) but image 0
///   is 3×32×32; all images in a batch must have the same size`.
public func makeBatch(_ images: [FloatImage]) throws -> Tensor {
  guard let first = images.first else {
    throw TransformError("makeBatch", "no images to stack (a batch needs at least one)")
  }
  for (n, image) in images.enumerated().dropFirst()
  where image.channels != first.channels || image.height != first.height || image.width != first.width {
    throw TransformError(
      "makeBatch",
      "image \(n) is \(image.sizeDescription) (C×H×W) but image 0 is \(first.sizeDescription); "
        + "all images in a batch must have the same size")
  }
  let per = first.pixels.count
  let batch = Tensor.zeros([images.count, first.channels, first.height, first.width])
  let dst = batch.data
  for (n, image) in images.enumerated() {
    image.pixels.withUnsafeBufferPointer { src in
      (dst + n * per).update(from: src.baseAddress!, count: per)
    }
  }
  return batch
}
