import Foundation
import Synchronization

/// What happens when a tensor's memory cannot be had (the system refuses it: another
/// process took the memory, or an address-space limit): the process stops with an
/// `Error:` line saying what was asked for and, in a training run, at which step and
/// which checkpoint is kept — exit status 1, not a crash.
///
/// A tensor is allocated deep inside kernels, on any thread, by code that cannot throw;
/// unwinding from there is not possible, so this ends the process at once (`_exit`: no
/// other thread runs on over a half-made tensor). That is safe for the run folder:
/// every file is written atomically, and leftovers of an interrupted write are removed
/// when the folder is opened again. The trainer says where it is (`setStep` once per
/// step, `setAdvice` when a checkpoint is saved); nothing runs per allocation unless one
/// fails.
public enum AllocationFailure {
  /// The training step under way (-1: not training), and what to say after the size.
  private static let step = Atomic<Int>(-1)
  private static let advice = Mutex<String?>(nil)

  /// The step under way: one atomic store, cheap enough for every step.
  public static func setStep(_ value: Int) { step.store(value, ordering: .relaxed) }

  /// What is kept and what to do (e.g. the last checkpoint and `--resume`); nil goes
  /// back to the general advice, and ends the step context.
  public static func setAdvice(_ text: String?) {
    advice.withLock { $0 = text }
    if text == nil { setStep(-1) }
  }

  /// The message for a failed allocation of `floats` floats.
  public static func message(floats: Int) -> String {
    let size = String(format: "%.1f MB", Double(floats) * 4 / 1e6)
    let what = "out of memory: a tensor of \(floats) floats (\(size)) could not be allocated"
    let general =
      "free some memory, or ask for smaller sizes (for a run: train.batch_size, backbone.image_size, backbone.width)"
    let current = step.load(ordering: .relaxed)
    let prefix = current >= 0 ? "step \(current): " : ""
    return prefix + what + "; " + (advice.withLock { $0 } ?? general)
  }

  /// Writes the message to standard error and ends the process with status 1.
  public static func stop(floats: Int) -> Never {
    let text = "Error: \(message(floats: floats))\n"
    _ = text.withCString { Foundation.write(STDERR_FILENO, $0, strlen($0)) }
    _exit(1)
  }
}
