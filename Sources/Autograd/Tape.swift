/// Reverse-mode automatic differentiation on a dynamic tape.
///
/// Every differentiable op computes its forward result and, when gradients are being
/// recorded, attaches a `GradFn` to it: the op's inputs and a pullback closure that maps
/// the gradient of the result to the gradients of the inputs. The pullback sits next to
/// the forward code in each op's file (docs/engine-principles.md, principle 1). `backward()`
/// walks the graph in reverse topological order and *accumulates* gradients, so a
/// tensor used twice receives the sum of both contributions.

/// The recorded backward step of one op.
final class GradFn {
  let name: String
  let inputs: [Tensor]
  /// Maps the result's gradient to one gradient per input (`nil` where an input does
  /// not require one). Runs with recording off.
  let pullback: (Tensor) throws -> [Tensor?]

  init(name: String, inputs: [Tensor], pullback: @escaping (Tensor) throws -> [Tensor?]) {
    self.name = name
    self.inputs = inputs
    self.pullback = pullback
  }
}

/// Whether ops record their backward steps. Off inside `withoutGradients` (evaluation,
/// optimizer updates) and while `backward()` runs. Task-local, so a no-grad scope in
/// one thread or task does not affect another.
public enum GradMode {
  @TaskLocal static var isEnabled = true

  public static var isRecording: Bool { isEnabled }
}

/// Runs `body` without recording gradients: results have no `GradFn` and
/// `requiresGrad == false`, and no intermediate values are kept for a backward pass.
public func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
  try GradMode.$isEnabled.withValue(false, operation: body)
}

extension Tensor {
  /// Attaches a backward step to `self` (the result of op `name` on `inputs`) when
  /// recording is on and any input requires a gradient. Returns `self`.
  @inline(__always) @discardableResult
  func recording(
    _ name: String, _ inputs: [Tensor], _ pullback: @escaping (Tensor) throws -> [Tensor?]
  ) -> Tensor {
    guard GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) else { return self }
    requiresGrad = true
    gradFn = GradFn(name: name, inputs: inputs, pullback: pullback)
    return self
  }

  /// Back-propagates from this tensor: accumulates d(self)/d(leaf) · `seed` into the
  /// `grad` of every leaf that requires one. `seed` defaults to ones for a one-element
  /// tensor (a loss). The graph is released afterwards (like PyTorch without
  /// `retain_graph`), so call it once per forward pass.
  public func backward(_ seed: Tensor? = nil) throws {
    guard requiresGrad else {
      throw TensorError("backward", "tensor does not require a gradient (no parameter reaches it)")
    }
    guard !backwardReleased else {
      throw TensorError("backward", "this graph was already used by a backward pass; run the forward pass again")
    }
    let start: Tensor
    if let seed {
      guard seed.shape == shape else {
        throw TensorError("backward", "seed gradient \(fmt(seed.shape)) does not match \(fmt(shape))")
      }
      start = seed
    } else {
      guard count == 1 else {
        throw TensorError("backward", "a seed gradient is needed for a tensor of shape \(fmt(shape))")
      }
      start = Tensor.ones(shape)
    }
    try withoutGradients { try runBackward(from: start) }
  }

  private func runBackward(from seed: Tensor) throws {
    // Reverse topological order by iterative depth-first search over producers.
    var order: [Tensor] = []
    var visited = Set<ObjectIdentifier>()
    var stack: [(Tensor, Bool)] = [(self, false)]
    while let (t, expanded) = stack.popLast() {
      if expanded {
        order.append(t)
        continue
      }
      if !visited.insert(ObjectIdentifier(t)).inserted { continue }
      stack.append((t, true))
      if let fn = t.gradFn {
        for input in fn.inputs where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
          stack.append((input, false))
        }
      }
    }
    // Pending gradients of non-leaf tensors; `owned` says whether the buffer may be
    // added to in place (a pullback may hand the same tensor to several inputs).
    var pending: [ObjectIdentifier: (grad: Tensor, owned: Bool)] = [:]
    pending[ObjectIdentifier(self)] = (seed, false)
    // Walk from the output back, dropping each tensor once it is done: with the GradFn
    // released below, activations are freed as soon as nothing later needs them.
    while let t = order.popLast() {
      guard let (g, owned) = pending.removeValue(forKey: ObjectIdentifier(t)) else { continue }
      guard let fn = t.gradFn else {
        guard !t.backwardReleased else {
          throw TensorError("backward", "part of this graph was already used by a backward pass; run the forward pass again")
        }
        try t.accumulateGrad(g, owned: owned)
        continue
      }
      let grads = try fn.pullback(g)
      precondition(grads.count == fn.inputs.count, "\(fn.name): pullback returned \(grads.count) gradients for \(fn.inputs.count) inputs")
      for (input, grad) in zip(fn.inputs, grads) {
        guard input.requiresGrad, let grad else { continue }
        guard grad.shape == input.shape else {
          throw TensorError(fn.name, "backward produced a gradient of shape \(fmt(grad.shape)) for an input of shape \(fmt(input.shape))")
        }
        let key = ObjectIdentifier(input)
        if let (existing, existingOwned) = pending[key] {
          if existingOwned {
            addInPlace(existing, grad)
            pending[key] = (existing, true)
          } else {
            pending[key] = (try existing + grad, true)
          }
        } else {
          pending[key] = (grad, false)
        }
      }
      // Release what this op kept for backward.
      t.gradFn = nil
      t.backwardReleased = true
    }
  }

  /// `grad += g` for a leaf (the first gradient is copied unless we own it).
  private func accumulateGrad(_ g: Tensor, owned: Bool) throws {
    if let existing = grad {
      addInPlace(existing, g)
    } else {
      grad = owned ? g : g.copy()
    }
  }

  /// Clears the accumulated gradient.
  public func zeroGrad() { grad = nil }
}

/// `a += b` elementwise for equal shapes, outside autograd.
func addInPlace(_ a: Tensor, _ b: Tensor) {
  let n = a.count
  let pa = a.data, pb = b.data
  Parallel.forChunks(n, minChunk: 1 << 15) { r in
    for i in r { pa[i] += pb[i] }
  }
}
