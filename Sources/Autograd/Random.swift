/// A seeded pseudo-random generator (xoshiro256**, Blackman & Vigna 2018).
///
/// Every random draw in Pretext takes one of these explicitly (no hidden global state):
/// the same seed gives the same numbers on every machine. Its state is four words that
/// can be saved in a checkpoint and restored.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Equatable {
  private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

  /// The generator's state, four words (for checkpoints).
  public var state: [UInt64] { [s0, s1, s2, s3] }

  /// Seeds the 256-bit state from one 64-bit seed through SplitMix64, as recommended by
  /// the xoshiro authors (never all zero).
  public init(seed: UInt64) {
    var x = seed
    var s = [UInt64](repeating: 0, count: 4)
    for i in 0..<4 {
      x &+= 0x9E37_79B9_7F4A_7C15
      var z = x
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      s[i] = z ^ (z >> 31)
    }
    (s0, s1, s2, s3) = (s[0], s[1], s[2], s[3])
  }

  /// Restores a saved state (four words, not all zero).
  public init?(state: [UInt64]) {
    guard state.count == 4, state.contains(where: { $0 != 0 }) else { return nil }
    (s0, s1, s2, s3) = (state[0], state[1], state[2], state[3])
  }

  @inline(__always)
  public mutating func next() -> UInt64 {
    let result = rotl(s1 &* 5, 7) &* 9
    let t = s1 << 17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = rotl(s3, 45)
    return result
  }

  @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
    (x << k) | (x >> (64 - k))
  }

  /// A uniform float in [0, 1) with 24 random bits.
  @inline(__always)
  public mutating func nextFloat() -> Float {
    Float(next() >> 40) * (1.0 / 16_777_216.0)
  }

  /// A uniform double in [0, 1) with 53 random bits.
  @inline(__always)
  public mutating func nextDouble() -> Double {
    Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
  }

  /// A standard normal draw (Box-Muller; one of the pair is discarded so that the
  /// generator's state alone determines the sequence).
  public mutating func nextNormal() -> Float {
    let u1 = 1.0 - nextDouble()  // (0, 1]: log stays finite
    let u2 = nextDouble()
    return Float((-2.0 * _log(u1)).squareRoot() * _cos(2.0 * Double.pi * u2))
  }

  /// A uniform integer in 0..<bound.
  public mutating func nextInt(below bound: Int) -> Int {
    precondition(bound > 0, "nextInt(below:): bound must be positive, got \(bound)")
    return Int(next(upperBound: UInt64(bound)))
  }

  /// A new generator derived from this one (for a worker or a sub-task), advancing
  /// this generator by one draw.
  public mutating func split() -> RandomGenerator {
    RandomGenerator(seed: next())
  }

  /// A random permutation of 0..<n (Fisher-Yates).
  public mutating func permutation(_ n: Int) -> [Int] {
    var p = Array(0..<n)
    if n > 1 {
      for i in stride(from: n - 1, to: 0, by: -1) {
        p.swapAt(i, nextInt(below: i + 1))
      }
    }
    return p
  }
}

@inline(__always) func _log(_ x: Double) -> Double {
  #if canImport(Glibc)
    return Glibc.log(x)
  #else
    return Darwin.log(x)
  #endif
}
@inline(__always) func _cos(_ x: Double) -> Double {
  #if canImport(Glibc)
    return Glibc.cos(x)
  #else
    return Darwin.cos(x)
  #endif
}

#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif
