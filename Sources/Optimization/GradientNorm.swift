import Autograd

/// Scales all gradients so their global L2 norm is at most `maxNorm`; returns the norm
/// before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: [OptimizedParameter], maxNorm: Float) -> Float {
  let norm = Float(gradientNorm(parameters))
  if norm > maxNorm && norm > 0 {
    let f = maxNorm / norm
    for p in parameters {
      guard let g = p.tensor.grad else { continue }
      for i in 0..<g.count { g.data[i] *= f }
    }
  }
  return norm
}

/// The global L2 norm of the parameters' gradients (those that have one): each tensor's
/// sum of squares in Float, the total in Double.
public func gradientNorm(_ parameters: [OptimizedParameter]) -> Double {
  var total = 0.0
  for p in parameters {
    guard let g = p.tensor.grad else { continue }
    var s: Float = 0
    for i in 0..<g.count { s += g.data[i] * g.data[i] }
    total += Double(s)
  }
  return total.squareRoot()
}
