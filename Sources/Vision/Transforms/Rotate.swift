// Quarter-turn rotations (rotation prediction, Gidaris et al. 2018): exact pixel moves,
// no resampling, so the four rotations of an image hold the same samples.
//
// Shapes: [C, H, W] → [C, H, W] for an even number of turns, [C, W, H] for an odd one.

import Autograd

extension FloatImage {
  /// The image rotated counter-clockwise by `quarterTurns` × 90° (any integer; negative
  /// turns go clockwise), as `numpy.rot90(x, k, axes=(1, 2))` / `torch.rot90` on [C, H, W].
  public func rotated(quarterTurns: Int) -> FloatImage {
    let k = ((quarterTurns % 4) + 4) % 4
    if k == 0 { return self }
    let (h, w) = (height, width)
    let (outH, outW) = k == 2 ? (h, w) : (w, h)
    return FloatImage(channels: channels, height: outH, width: outW) { out in
      pixels.withUnsafeBufferPointer { src in
        for c in 0..<channels {
          let inBase = c * h * w, outBase = c * outH * outW
          for y in 0..<outH {
            for x in 0..<outW {
              // The source sample that lands at (y, x).
              let (sy, sx): (Int, Int)
              switch k {
              case 1: (sy, sx) = (x, w - 1 - y)
              case 2: (sy, sx) = (h - 1 - y, w - 1 - x)
              default: (sy, sx) = (h - 1 - x, y)
              }
              out[outBase + y * outW + x] = src[inBase + sy * w + sx]
            }
          }
        }
      }
    }
  }
}

/// Rotates every image counter-clockwise by `quarterTurns` × 90° (deterministic: the
/// rotation task picks the turn itself, since it is the label).
public struct Rotate: ImageTransform {
  public let quarterTurns: Int
  public init(quarterTurns: Int) { self.quarterTurns = quarterTurns }
  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    image.rotated(quarterTurns: quarterTurns)
  }
}
