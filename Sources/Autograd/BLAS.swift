import CBLAS
import Support

/// OpenBLAS as Pretext uses it: row-major single-precision GEMM, thread control, and
/// what was loaded (see Sources/CBLAS/include/pretext_blas.h for how the core type is
/// chosen).
public enum BLAS {
  /// Loads OpenBLAS if needed; throws a message naming the package to install.
  public static func load() throws {
    var message = [CChar](repeating: 0, count: 512)
    if pretext_blas_load(&message, message.count) != 0 {
      throw RuntimeError(String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
  }

  /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major, with leading dimensions.
  @inline(__always)
  public static func sgemm(
    transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    if m == 0 || n == 0 { return }
    if k == 0 {
      // Some BLAS builds skip the beta scaling when k == 0; do it here.
      for i in 0..<m {
        let row = c + i * ldc
        for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
      }
      return
    }
    pretext_sgemm(
      Int32(transA ? PRETEXT_TRANS : PRETEXT_NO_TRANS),
      Int32(transB ? PRETEXT_TRANS : PRETEXT_NO_TRANS),
      Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c,
      Int32(ldc))
  }

  nonisolated(unsafe) private static var currentThreads = 0

  static func setThreads(_ n: Int) {
    pretext_blas_set_threads(Int32(n))
    currentThreads = n
  }

  /// Runs `body` with OpenBLAS on one thread (for many small GEMMs run from an outer
  /// parallel loop), then restores the configured count.
  static func withSingleThread(_ body: () -> Void) {
    if currentThreads == 0 { currentThreads = Int(pretext_blas_threads()) }
    let saved = currentThreads
    if saved != 1 { pretext_blas_set_threads(1) }
    body()
    if saved != 1 { pretext_blas_set_threads(Int32(saved)) }
  }

  public static var threads: Int { Int(pretext_blas_threads()) }
  public static var libraryPath: String { String(cString: pretext_blas_library_path()) }
  public static var config: String { String(cString: pretext_blas_config()) }
  public static var coreName: String { String(cString: pretext_blas_core_name()) }
  /// The core type Pretext asked for ("" if the user chose or OpenBLAS detected it).
  public static var requestedCore: String { String(cString: pretext_blas_requested_core()) }
  public static var coreChosenByUser: Bool { pretext_blas_core_from_user() != 0 }
  /// The core type Pretext would choose for this CPU.
  public static var bestCore: String { String(cString: pretext_blas_best_core()) }
}
