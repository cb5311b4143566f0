/// Vectorized building blocks the compiler cannot derive on its own.
///
/// Floating-point reductions (sums, dot products, maxima) are not reassociated by the
/// optimizer, so a plain `for` loop that accumulates stays scalar. These helpers keep
/// 32 partial results in two SIMD16 registers and combine them in a fixed order: fast
/// and still deterministic.

@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
  UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always)
func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
  UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// Σ p[0..<n].
@inline(__always)
func vectorSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
  var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
  var i = 0
  while i + 32 <= n {
    a0 += load16(p + i)
    a1 += load16(p + i + 16)
    i += 32
  }
  if i + 16 <= n {
    a0 += load16(p + i)
    i += 16
  }
  var s = (a0 + a1).sum()
  while i < n {
    s += p[i]
    i += 1
  }
  return s
}

/// Σ a[i]·b[i].
@inline(__always)
func vectorDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
  var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
  var i = 0
  while i + 32 <= n {
    a0 += load16(a + i) * load16(b + i)
    a1 += load16(a + i + 16) * load16(b + i + 16)
    i += 32
  }
  if i + 16 <= n {
    a0 += load16(a + i) * load16(b + i)
    i += 16
  }
  var s = (a0 + a1).sum()
  while i < n {
    s += a[i] * b[i]
    i += 1
  }
  return s
}

/// Σ (p[i] − c)².
@inline(__always)
func vectorSumSquaredDeviation(_ p: UnsafePointer<Float>, _ n: Int, _ c: Float) -> Float {
  var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
  let cv = SIMD16<Float>(repeating: c)
  var i = 0
  while i + 32 <= n {
    let d0 = load16(p + i) - cv, d1 = load16(p + i + 16) - cv
    a0 += d0 * d0
    a1 += d1 * d1
    i += 32
  }
  if i + 16 <= n {
    let d0 = load16(p + i) - cv
    a0 += d0 * d0
    i += 16
  }
  var s = (a0 + a1).sum()
  while i < n {
    let d = p[i] - c
    s += d * d
    i += 1
  }
  return s
}

/// max p[0..<n] (−∞ for n = 0). NaN elements are skipped: callers (softmax) get NaN
/// through the values themselves. Eight independent running maxima hide the
/// compare-select latency.
@inline(__always)
func vectorMax(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
  var m0 = -Float.infinity, m1 = m0, m2 = m0, m3 = m0, m4 = m0, m5 = m0, m6 = m0, m7 = m0
  var i = 0
  while i + 8 <= n {
    m0 = p[i] > m0 ? p[i] : m0
    m1 = p[i + 1] > m1 ? p[i + 1] : m1
    m2 = p[i + 2] > m2 ? p[i + 2] : m2
    m3 = p[i + 3] > m3 ? p[i + 3] : m3
    m4 = p[i + 4] > m4 ? p[i + 4] : m4
    m5 = p[i + 5] > m5 ? p[i + 5] : m5
    m6 = p[i + 6] > m6 ? p[i + 6] : m6
    m7 = p[i + 7] > m7 ? p[i + 7] : m7
    i += 8
  }
  while i < n {
    m0 = p[i] > m0 ? p[i] : m0
    i += 1
  }
  let a = m0 > m1 ? m0 : m1, b = m2 > m3 ? m2 : m3, c = m4 > m5 ? m4 : m5, d = m6 > m7 ? m6 : m7
  let ab = a > b ? a : b, cd = c > d ? c : d
  return ab > cd ? ab : cd
}

/// dst[0..<n] += src[0..<n] (elementwise: no reassociation, so the result is exact-order).
@inline(__always)
func vectorAddInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
  var i = 0
  while i + 16 <= n {
    store16(load16(dst + i) + load16(src + i), dst + i)
    i += 16
  }
  while i < n {
    dst[i] += src[i]
    i += 1
  }
}
