/// Ops that span the processes of a data-parallel run (see `Communicator`).

extension Tensor {
  /// Every process's tensor [n, …] stacked along axis 0 in rank order: [size·n, …]. All
  /// processes give the same shape (data-parallel slices of one global batch).
  ///
  /// Backward, each process holds the gradient of its own loss with respect to the whole
  /// gathered tensor; the gradient of its rows is the sum of those over all processes
  /// (an all-reduce, then this process's rows). So each process back-propagates the
  /// gradient of the sum of every process's loss, as if the global batch were on one
  /// process — the "GatherLayer" of SimCLR's and lightly's distributed code. With one
  /// process this is the identity.
  public func allGathered(over group: any Communicator) throws -> Tensor {
    guard rank >= 1 else { throw TensorError("all_gather", "a scalar cannot be gathered along axis 0") }
    if group.size == 1 { return self }
    let out = Tensor(uninitializedShape: [group.size * shape[0]] + shape.dropFirst())
    group.allGather(data, bytes: count * MemoryLayout<Float>.stride, into: out.data)
    let localCount = count
    let localShape = shape
    return out.recording("all_gather", [self]) { g in
      let summed = g.copy()
      group.allReduceSum(summed.data, count: summed.count)
      let local = Tensor(uninitializedShape: localShape)
      local.data.update(from: summed.data + group.rank * localCount, count: localCount)
      return [local]
    }
  }
}
