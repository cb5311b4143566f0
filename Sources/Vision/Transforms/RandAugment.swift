// RandAugment (Cubuk et al. 2020, "RandAugment: Practical automated data augmentation
// with a reduced search space"): per image, `operations` ops drawn uniformly from a fixed
// list, all at one shared `magnitude`. The strong augmentation of supervised fine-tuning
// recipes (DeiT, MAE's fine-tuning: `rand-m9-mstd0.5-inc1`).
//
// The list and the magnitude scale are torchvision's `RandAugment` (`num_magnitude_bins`
// 31, so magnitude 9 is 9/30 of each op's range): identity, shear x/y (up to 0.3),
// translate x/y (up to 150/331 of the side), rotate (up to 30°), brightness, colour
// (saturation), contrast and sharpness (factor 1 ± up to 0.9), posterize (8 → 4 bits),
// solarize (threshold 1 → 0), autocontrast and equalize. Signed ops take either sign with
// probability 1/2. Geometric ops resample by nearest neighbour and fill uncovered pixels
// with `fill` (torchvision's defaults).
//
// Shapes: [C, H, W] → [C, H, W]. Colour ops touch the colour channels only (an alpha
// channel is left alone); saturation is a no-op on gray images, as in `ColorJitter`.

import Autograd

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

public struct RandAugment: ImageTransform {
  /// The ops RandAugment draws from, in torchvision's order.
  public enum Operation: Int, CaseIterable, Sendable {
    case identity, shearX, shearY, translateX, translateY, rotate, brightness, color, contrast, sharpness
    case posterize, solarize, autoContrast, equalize
  }

  /// Ops applied to each image (torchvision and timm: 2).
  public let operations: Int
  /// Strength on a scale of 0…`RandAugment.magnitudeBins − 1` (torchvision and timm: 9).
  public let magnitude: Int
  /// What geometric ops leave where no source pixel lands (nominal [0, 1]; 0 is black).
  public let fill: Float

  /// torchvision's `num_magnitude_bins`: magnitudes 0…30.
  public static let magnitudeBins = 31

  public init(operations: Int = 2, magnitude: Int = 9, fill: Float = 0) throws {
    guard operations >= 0 else {
      throw TransformError("RandAugment", "operations must be at least 0, got \(operations)")
    }
    guard (0..<Self.magnitudeBins).contains(magnitude) else {
      throw TransformError("RandAugment", "magnitude must be in 0...\(Self.magnitudeBins - 1), got \(magnitude)")
    }
    guard fill.isFinite else { throw TransformError("RandAugment", "fill must be finite, got \(fill)") }
    self.operations = operations
    self.magnitude = magnitude
    self.fill = fill
  }

  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    var out = image
    for _ in 0..<operations {
      let op = Operation.allCases[rng.nextInt(below: Operation.allCases.count)]
      let sign: Float = rng.nextFloat() < 0.5 ? -1 : 1
      out = apply(op, signed: sign, to: out)
    }
    return out
  }

  /// `op` at this transform's magnitude, negated for signed ops when `sign` is −1.
  public func apply(_ op: Operation, signed sign: Float = 1, to image: FloatImage) -> FloatImage {
    let t = Float(magnitude) / Float(Self.magnitudeBins - 1)  // 0…1 along each op's range
    switch op {
    case .identity: return image
    case .shearX: return image.affine(fill: fill) { x, y in (x + sign * 0.3 * t * y, y) }
    case .shearY: return image.affine(fill: fill) { x, y in (x, y + sign * 0.3 * t * x) }
    case .translateX:
      let d = (sign * 150 / 331 * t * Float(image.width)).rounded(.towardZero)
      return image.affine(fill: fill) { x, y in (x - d, y) }
    case .translateY:
      let d = (sign * 150 / 331 * t * Float(image.height)).rounded(.towardZero)
      return image.affine(fill: fill) { x, y in (x, y - d) }
    case .rotate:
      // About the image centre; the inverse rotation maps an output pixel to its source.
      let a = sign * 30 * t * Float.pi / 180
      let (c, s) = (cosf(a), sinf(a))
      let cx = Float(image.width) / 2, cy = Float(image.height) / 2
      return image.affine(fill: fill) { x, y in
        let (dx, dy) = (x - cx, y - cy)
        return (cx + c * dx - s * dy, cy + s * dx + c * dy)
      }
    case .brightness: return ColorJitter.adjustBrightness(image, factor: 1 + sign * 0.9 * t)
    case .color: return ColorJitter.adjustSaturation(image, factor: 1 + sign * 0.9 * t)
    case .contrast: return ColorJitter.adjustContrast(image, factor: 1 + sign * 0.9 * t)
    case .sharpness: return image.sharpened(factor: 1 + sign * 0.9 * t)
    case .posterize:
      // 8 bits at magnitude 0 down to 4 at the top (torchvision: 8 − round(i / ((bins − 1) / 4))).
      return image.posterized(bits: 8 - Int((Float(magnitude) / (Float(Self.magnitudeBins - 1) / 4)).rounded()))
    case .solarize: return image.solarized(threshold: 1 - t, alphaToo: false)
    case .autoContrast: return image.autoContrasted()
    case .equalize: return image.equalized()
    }
  }
}

extension FloatImage {
  /// The image resampled by nearest neighbour through `source`, which maps an output
  /// pixel's centre (x + ½, y + ½) to the point of the input it shows; points outside
  /// the input take `fill` (colour channels) or stay opaque (alpha).
  func affine(fill: Float, _ source: (Float, Float) -> (Float, Float)) -> FloatImage {
    let (h, w) = (height, width)
    let colour = colorChannelCount(channels)
    return FloatImage(channels: channels, height: h, width: w) { out in
      pixels.withUnsafeBufferPointer { src in
        for y in 0..<h {
          for x in 0..<w {
            let (sx, sy) = source(Float(x) + 0.5, Float(y) + 0.5)
            let ix = Int(floorf(sx)), iy = Int(floorf(sy))
            let inside = sx.isFinite && sy.isFinite && ix >= 0 && ix < w && iy >= 0 && iy < h
            for c in 0..<channels {
              let o = (c * h + y) * w + x
              out[o] = inside ? src[(c * h + iy) * w + ix] : (c < colour ? fill : 1)
            }
          }
        }
      }
    }
  }

  /// `clamp(factor · x + (1 − factor) · smooth(x), 0, 1)` with PIL's 3×3 smoothing kernel
  /// [[1,1,1],[1,5,1],[1,1,1]]/13 inside and the border kept (torchvision `adjust_sharpness`).
  func sharpened(factor: Float) -> FloatImage {
    let (h, w) = (height, width)
    guard h > 2, w > 2 else { return self }
    let colour = colorChannelCount(channels)
    return mapped { buf in
      pixels.withUnsafeBufferPointer { src in
        for c in 0..<colour {
          let base = c * h * w
          for y in 1..<(h - 1) {
            for x in 1..<(w - 1) {
              var sum: Float = 4 * src[base + y * w + x]
              for dy in -1...1 {
                for dx in -1...1 { sum += src[base + (y + dy) * w + x + dx] }
              }
              let i = base + y * w + x
              buf[i] = min(max(factor * src[i] + (1 - factor) * sum / 13, 0), 1)
            }
          }
        }
      }
    }
  }

  /// The 8-bit value of each colour sample with only its top `bits` bits kept (PIL's
  /// `posterize`), back in [0, 1].
  func posterized(bits: Int) -> FloatImage {
    let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - min(max(bits, 0), 8)))
    let count = colorChannelCount(channels) * height * width
    return mapped { buf in
      for i in 0..<count {
        let v = UInt8(min(max(buf[i], 0), 1) * 255 + 0.5)
        buf[i] = Float(v & mask) / 255
      }
    }
  }

  /// Each colour channel stretched so its minimum becomes 0 and its maximum 1; a flat
  /// channel is left as it is (torchvision `autocontrast`).
  func autoContrasted() -> FloatImage {
    let plane = height * width
    return mapped { buf in
      for c in 0..<colorChannelCount(channels) {
        let channel = UnsafeMutableBufferPointer(rebasing: buf[(c * plane)..<((c + 1) * plane)])
        let lo = channel.min()!, hi = channel.max()!
        guard hi > lo else { continue }
        let scale = 1 / (hi - lo)
        for i in 0..<plane { channel[i] = min(max((channel[i] - lo) * scale, 0), 1) }
      }
    }
  }

  /// Histogram equalization of each colour channel over its 8-bit values (PIL's
  /// `ImageOps.equalize`, which torchvision follows): a lookup table spreading the
  /// cumulative histogram evenly, the last occupied level excluded; a channel with one
  /// level is left as it is.
  func equalized() -> FloatImage {
    let plane = height * width
    return mapped { buf in
      for c in 0..<colorChannelCount(channels) {
        let base = c * plane
        var levels = [UInt8](repeating: 0, count: plane)
        var histogram = [Int](repeating: 0, count: 256)
        for i in 0..<plane {
          levels[i] = UInt8(min(max(buf[base + i], 0), 1) * 255 + 0.5)
          histogram[Int(levels[i])] += 1
        }
        let last = histogram.lastIndex { $0 > 0 }!
        let step = (plane - histogram[last]) / 255
        guard step > 0 else { continue }
        var lut = [Float](repeating: 0, count: 256)
        var cumulative = step / 2
        for v in 0..<256 {
          lut[v] = Float(min(cumulative / step, 255)) / 255
          cumulative += histogram[v]
        }
        for i in 0..<plane { buf[base + i] = lut[Int(levels[i])] }
      }
    }
  }
}
