// Gaussian blur (SimCLR, BYOL; torchvision's `GaussianBlur`).
//
// Separable: a horizontal 1-D pass into a scratch buffer, then a vertical pass, each a
// sum of `kernelSize` shifted rows (vectorizable). Borders use reflect padding without
// repeating the edge sample (`…c b | a b c … | b a…`, torchvision's `mode="reflect"`);
// unlike torch, kernels wider than the image are allowed: the reflection is repeated
// (period 2·(n-1)), and a 1-pixel-wide axis simply repeats its one sample.
//
// Shapes: [C, H, W] → [C, H, W].

import Autograd

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Blurs with a Gaussian whose standard deviation (in pixels) is drawn uniformly from
/// `sigma` on each call (one draw). The kernel has `kernelSize` taps when given (odd), or
/// `GaussianBlur.kernelSize(forSigma:)` = 2·⌈3σ⌉ + 1 taps, which keeps 99.7% of the mass.
/// SimCLR's recipe is σ ∈ [0.1, 2.0] with a kernel of about a tenth of the image side.
public struct GaussianBlur: ImageTransform {
  public let sigma: ClosedRange<Float>
  /// Fixed odd kernel size, or nil to derive it from each drawn σ.
  public let kernelSize: Int?

  public init(sigma: ClosedRange<Float> = 0.1...2.0, kernelSize: Int? = nil) throws {
    guard sigma.lowerBound > 0, sigma.upperBound.isFinite else {
      throw TransformError("GaussianBlur", "sigma must satisfy 0 < lower ≤ upper < ∞, got \(sigma)")
    }
    if let k = kernelSize, k <= 0 || k % 2 == 0 {
      throw TransformError("GaussianBlur", "kernel size must be odd and positive, got \(k)")
    }
    self.sigma = sigma
    self.kernelSize = kernelSize
  }

  /// 2·⌈3σ⌉ + 1: the smallest odd size covering ±3σ.
  public static func kernelSize(forSigma sigma: Float) -> Int {
    2 * Int((3 * sigma).rounded(.up)) + 1
  }

  /// The normalized 1-D kernel: `exp(-x² / 2σ²)` at `x = -(size-1)/2 … (size-1)/2`,
  /// divided by its sum (torchvision's `_get_gaussian_kernel1d`). Sums to 1.
  public static func kernel(size: Int, sigma: Float) -> [Float] {
    precondition(size > 0 && size % 2 == 1, "GaussianBlur.kernel: size must be odd and positive, got \(size)")
    precondition(sigma > 0, "GaussianBlur.kernel: sigma must be positive, got \(sigma)")
    let half = Double(size - 1) / 2
    let s = Double(sigma)
    let pdf = (0..<size).map { i -> Double in
      let x = (Double(i) - half) / s
      return exp(-0.5 * x * x)
    }
    let total = pdf.reduce(0, +)
    return pdf.map { Float($0 / total) }
  }

  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    let s = sigma.lowerBound + (sigma.upperBound - sigma.lowerBound) * rng.nextFloat()
    return image.blurred(sigma: s, kernelSize: kernelSize ?? Self.kernelSize(forSigma: s))
  }
}

/// Index `i` reflected into `0..<n` (reflect without edge repeat, repeated as needed).
@inline(__always) func reflectIndex(_ i: Int, _ n: Int) -> Int {
  if n == 1 { return 0 }
  if i >= 0 && i < n { return i }
  let period = 2 * (n - 1)
  var m = i % period
  if m < 0 { m += period }
  return m < n ? m : period - m
}

extension FloatImage {
  /// Gaussian blur with a fixed σ and an odd kernel size (default 2·⌈3σ⌉ + 1), reflect
  /// padding (see the file comment).
  public func blurred(sigma: Float, kernelSize: Int? = nil) -> FloatImage {
    let size = kernelSize ?? GaussianBlur.kernelSize(forSigma: sigma)
    let weights = GaussianBlur.kernel(size: size, sigma: sigma)
    return convolvedSeparably(with: weights)
  }

  /// Convolves every channel with `kernel` along x and then along y (odd length).
  func convolvedSeparably(with kernel: [Float]) -> FloatImage {
    let size = kernel.count
    let r = size / 2
    let w = width
    let h = height
    let c = channels
    let padded = w + 2 * r
    return FloatImage(channels: c, height: h, width: w) { out in
      kernel.withUnsafeBufferPointer { k in
        pixels.withUnsafeBufferPointer { src in
          withUnsafeTemporaryAllocation(of: Float.self, capacity: c * h * w + padded) { scratch in
            let tmp = scratch.baseAddress!
            let row = tmp + c * h * w  // one reflect-padded source row
            withUnsafeTemporaryAllocation(of: Int.self, capacity: padded + h + 2 * r) { index in
              withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: size) { rows in
                let xIndex = index.baseAddress!  // padded column j → source column
                let yIndex = xIndex + padded  // padded row j → source row
                for j in 0..<padded { xIndex[j] = reflectIndex(j - r, w) }
                for j in 0..<(h + 2 * r) { yIndex[j] = reflectIndex(j - r, h) }
                let taps = rows.baseAddress!
                // Horizontal pass: pad one row, then tmp[x] = Σ_t k[t] · row[x + t].
                for t in 0..<size { taps[t] = UnsafePointer(row + t) }
                for rowIndex in 0..<(c * h) {
                  let s = rowIndex * w
                  for j in 0..<padded { row[j] = src[s + xIndex[j]] }
                  weightedRowSum(tmp + s, taps, k.baseAddress!, taps: size, count: w)
                }
                // Vertical pass: out row y = Σ_t k[t] · tmp row reflect(y + t - r).
                let dst = out.baseAddress!
                for ch in 0..<c {
                  let plane = tmp + ch * h * w
                  for y in 0..<h {
                    for t in 0..<size { taps[t] = UnsafePointer(plane + yIndex[y + t] * w) }
                    weightedRowSum(dst + (ch * h + y) * w, taps, k.baseAddress!, taps: size, count: w)
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

/// `dst[x] = Σ_t k[t] · rows[t][x]` for `x < count`: eight columns at a time kept in a
/// vector register across all taps (one store per output instead of one per tap).
@inline(__always)
private func weightedRowSum(
  _ dst: UnsafeMutablePointer<Float>, _ rows: UnsafePointer<UnsafePointer<Float>>, _ k: UnsafePointer<Float>,
  taps: Int, count: Int
) {
  var x = 0
  while x + 8 <= count {
    var acc = SIMD8<Float>(repeating: 0)
    for t in 0..<taps {
      acc += k[t] * UnsafeRawPointer(rows[t] + x).loadUnaligned(as: SIMD8<Float>.self)
    }
    UnsafeMutableRawPointer(dst + x).storeBytes(of: acc, as: SIMD8<Float>.self)
    x += 8
  }
  while x < count {
    var acc: Float = 0
    for t in 0..<taps { acc += k[t] * rows[t][x] }
    dst[x] = acc
    x += 1
  }
}
