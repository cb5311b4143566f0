// Resizing 8-bit images at decode time: a photo folder's 4000×3000 files are brought
// down to the size training uses (`data.decode_size`) once, when they are read, so that
// neither the cache nor the augmentations handle megapixels.
//
// The filter is PIL's antialiased BILINEAR (`Image.resize(..., Image.BILINEAR)`, which
// torchvision's `Resize(antialias=True)` reproduces): a triangle filter widened by the
// scale factor, so every source pixel contributes (see `ResampleAxis` in Geometric.swift,
// shared with the float transforms). Results are rounded to the nearest byte and clamped.
//
// Layout: `Image` is HWC; both passes keep it. Shapes: [H, W, C] → [H', W', C].

extension Image {
  /// The size a `width`×`height` image is reduced to so that its shorter side is at most
  /// `shorterSide`: the shorter side becomes `shorterSide` and the longer one
  /// `longer · shorterSide / shorter`, truncated (torchvision's `Resize(int)` rule), at
  /// least 1. Images already small enough keep their size (never enlarged).
  public static func reducedSize(width: Int, height: Int, shorterSide: Int) -> (width: Int, height: Int) {
    let shorter = min(width, height)
    guard shorterSide > 0, shorter > shorterSide else { return (width, height) }
    // Sides come from 32-bit header fields; the product cannot overflow.
    let longer = max(1, max(width, height) * shorterSide / shorter)
    return width <= height ? (shorterSide, longer) : (longer, shorterSide)
  }

  /// This image with its shorter side reduced to at most `shorterSide` (see
  /// `reducedSize`); itself when it is already small enough.
  public func reduced(toShorterSide shorterSide: Int) -> Image {
    let size = Image.reducedSize(width: width, height: height, shorterSide: shorterSide)
    guard size != (width, height) else { return self }
    return resized(width: size.width, height: size.height)
  }

  /// Antialiased bilinear resampling to `width`×`height` (both positive), channels kept.
  public func resized(width outW: Int, height outH: Int) -> Image {
    precondition(outW > 0 && outH > 0, "resized: output size must be positive, got \(outW)×\(outH)")
    if outW == width && outH == height { return self }
    let xs = ResampleAxis(start: 0, inSize: width, outSize: outW, interpolation: .bilinear, antialias: true)
    let ys = ResampleAxis(start: 0, inSize: height, outSize: outH, interpolation: .bilinear, antialias: true)
    let c = channels
    let rowSamples = outW * c
    // Vertical pass first, into floats: [outH, width, C]. Then horizontal: [outH, outW, C].
    var tall = [Float](repeating: 0, count: outH * width * c)
    let inRow = width * c
    pixels.withUnsafeBufferPointer { src in
      tall.withUnsafeMutableBufferPointer { dst in
        for j in 0..<outH {
          let out = dst.baseAddress! + j * inRow
          for k in 0..<ys.counts[j] {
            let w = ys.weights[j * ys.taps + k]
            let row = src.baseAddress! + (ys.starts[j] + k) * inRow
            for x in 0..<inRow { out[x] += w * Float(row[x]) }
          }
        }
      }
    }
    var result = [UInt8](repeating: 0, count: outH * rowSamples)
    tall.withUnsafeBufferPointer { src in
      result.withUnsafeMutableBufferPointer { dst in
        for j in 0..<outH {
          let row = src.baseAddress! + j * inRow
          let out = dst.baseAddress! + j * rowSamples
          for i in 0..<outW {
            let first = xs.starts[i]
            let w0 = i * xs.taps
            for ch in 0..<c {
              var acc: Float = 0
              for k in 0..<xs.counts[i] { acc += xs.weights[w0 + k] * row[(first + k) * c + ch] }
              out[i * c + ch] = UInt8(min(max(acc + 0.5, 0), 255))
            }
          }
        }
      }
    }
    return Image(width: outW, height: outH, channels: c, pixels: result)
  }
}
