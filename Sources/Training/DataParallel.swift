import Autograd
import Foundation
import NN
import Optimization
import Support

// Data-parallel training: N processes (launched by `mpirun`), one model copy each.
//
// - Data: process r prepares slice r of every global batch (`LoaderOptions.shard`); the
//   global batch is `train.batch_size`, each process holds batch_size / N samples.
// - Weights: process 0's state is broadcast to all at the start (fresh or resumed), and
//   every step applies the same averaged gradients, so the copies stay equal; they are
//   compared (a fingerprint) at every checkpoint.
// - Gradients: one all-reduce of one contiguous buffer per step (`GradientAverager`).
// - Files: only process 0 reads checkpoints and writes logs, metrics, checkpoints and
//   pictures.
// Each process back-propagates its own loss (the mean over its slice); averaging the
// gradients makes them those of the mean over the global batch. Losses that couple the
// samples of a batch (SimCLR's negatives, synchronized BatchNorm) communicate inside the
// task (`TaskBatch.group`) so that this holds for them too.

/// The gradients of every parameter as one contiguous buffer, averaged over the
/// processes with one all-reduce. Layout (floats):
///
///     [ grad of parameter 0 | grad of parameter 1 | … | one flag per parameter ]
///
/// A flag is 1 where this process has the parameter's gradient (0 and zeros otherwise);
/// after the sum, a parameter that no process has a gradient for keeps none, so the
/// optimizer leaves it alone as it would on one process. No bucketing or overlap with
/// the backward pass: the all-reduce runs once backward is done.
final class GradientAverager {
  let parameters: [OptimizedParameter]
  /// Where each parameter's gradient starts in `buffer`.
  let offsets: [Int]
  let flagsOffset: Int
  let buffer: Tensor

  init(_ parameters: [OptimizedParameter]) {
    self.parameters = parameters
    var offsets: [Int] = []
    var total = 0
    for p in parameters {
      offsets.append(total)
      total += p.tensor.count
    }
    self.offsets = offsets
    flagsOffset = total
    buffer = Tensor.zeros([total + parameters.count])
  }

  /// Bytes one process sends and receives per step, for a ring all-reduce: about twice
  /// the buffer (reduce-scatter, then all-gather), × (N − 1)/N.
  var bytes: Int { buffer.count * MemoryLayout<Float>.stride }

  /// Replaces each parameter's gradient by its mean over the processes of `group`.
  func average(over group: any Communicator) {
    // One process: its gradients already are the mean.
    guard group.size > 1 else { return }
    let b = buffer.data
    for (i, (p, offset)) in zip(parameters, offsets).enumerated() {
      if let g = p.tensor.grad {
        (b + offset).update(from: g.data, count: g.count)
        b[flagsOffset + i] = 1
      } else {
        (b + offset).update(repeating: 0, count: p.tensor.count)
        b[flagsOffset + i] = 0
      }
    }
    group.allReduceSum(b, count: buffer.count)
    let scale = 1 / Float(group.size)
    for (i, (p, offset)) in zip(parameters, offsets).enumerated() {
      guard b[flagsOffset + i] > 0 else {
        p.tensor.grad = nil
        continue
      }
      let g = p.tensor.grad ?? Tensor.zeros(p.tensor.shape)
      let src = b + offset, dst = g.data
      for j in 0..<g.count { dst[j] = src[j] * scale }
      p.tensor.grad = g
    }
  }
}

extension Communicator {
  /// Whether `flag` is set on any process.
  func any(_ flag: Bool) -> Bool {
    allReduceSum([flag ? 1 : 0])[0] > 0
  }

  /// Process `root`'s value.
  func broadcast(_ value: Int, root: Int) -> Int {
    var v = Int64(value)
    withUnsafeMutableBytes(of: &v) { broadcast($0.baseAddress!, bytes: 8, root: root) }
    return Int(v)
  }
}

/// A 64-bit fingerprint of tensors' values (FNV-1a over the float bit patterns), to
/// check that processes hold the same weights.
func fingerprint(_ tensors: [Tensor]) -> UInt64 {
  var h: UInt64 = 0xCBF2_9CE4_8422_2325
  for t in tensors {
    let p = t.data
    for i in 0..<t.count { h = (h ^ UInt64(p[i].bitPattern)) &* 0x0000_0100_0000_01B3 }
  }
  return h
}

/// A fingerprint of text (the settings, the parameter names and shapes).
func fingerprint(_ text: String) -> UInt64 {
  var h: UInt64 = 0xCBF2_9CE4_8422_2325
  for byte in text.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
  return h
}

extension Trainer {
  /// Before the first step: checks that every process was started alike (settings,
  /// model, data), then gives every process process 0's state (its fresh weights, or the
  /// checkpoint it resumed from) and run state.
  func synchronizeStart(_ state: CheckpointState) throws -> CheckpointState {
    guard group.size > 1 else { return state }
    let settingsText = String(decoding: try JSONEncoder.sortedKeys.encode(settings), as: UTF8.self) + task.name
    let modelText = model.stateDict().map { "\($0.name)\($0.tensor.shape)" }.joined(separator: ";")
    let checks: [(value: UInt64, problem: (Int, UInt64, UInt64) -> String)] = [
      (
        fingerprint(settingsText),
        { other, _, _ in
          "process \(other) was started with other train settings than process 0; "
            + "start every process with the same config and --set values"
        }
      ),
      (
        fingerprint(modelText),
        { other, _, _ in
          "process \(other) builds another model than process 0; start every process with the same config and Pretext"
        }
      ),
      (
        UInt64(source.count),
        { other, first, theirs in
          "process \(other) sees \(theirs) images in its data folder, process 0 sees \(first); each process reads "
            + "data.unlabeled on its own machine: the folders must hold the same files"
        }
      ),
    ]
    for check in checks {
      let all = group.allGather(check.value)
      if let other = all.firstIndex(where: { $0 != all[0] }) {
        throw TrainingError(check.problem(other, all[0], all[other]))
      }
    }
    // Process 0's tensors, in one buffer.
    let tensors = stateTensors()
    let flat = Tensor.zeros([tensors.reduce(0) { $0 + $1.count }])
    var offset = 0
    for t in tensors {
      (flat.data + offset).update(from: t.data, count: t.count)
      offset += t.count
    }
    group.broadcast(flat.data, bytes: flat.count * MemoryLayout<Float>.stride, root: 0)
    offset = 0
    for t in tensors {
      t.data.update(from: flat.data + offset, count: t.count)
      offset += t.count
    }
    let json = group.broadcast(group.isLeader ? Array(try JSONEncoder.sortedKeys.encode(state)) : [], root: 0)
    return try JSONDecoder().decode(CheckpointState.self, from: Data(json))
  }

  /// At a checkpoint: makes the buffers (BatchNorm running statistics, computed from
  /// each process's own slice unless `sync_batchnorm`) the mean over the processes, then
  /// checks that every process holds the same state, which the checkpoint then is.
  func agreeOnState(step: Int) throws {
    guard group.size > 1 else { return }
    let buffers = model.namedBuffers().map(\.tensor)
    for b in buffers {
      group.allReduceSum(b.data, count: b.count)
      let n = Float(group.size)
      for i in 0..<b.count { b.data[i] /= n }
    }
    let all = group.allGather(fingerprint(stateTensors()))
    if let other = all.firstIndex(where: { $0 != all[0] }) {
      throw TrainingError(
        "step \(step): the weights of process \(other) differ from process 0's (they should stay equal: "
          + "same start, same averaged gradients); the last checkpoint is kept")
    }
  }
}
