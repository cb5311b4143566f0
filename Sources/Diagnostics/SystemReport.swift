import Autograd
import CBLAS
import Distributed
import Foundation

/// What `pretext doctor` reports: the BLAS in use, threads, CPU vector extensions and an
/// sgemm rate measured on the spot.
public struct SystemReport: Codable, Sendable {
  public var pretextVersion: String
  public var cpu: String
  public var cores: Int
  public var vectorExtensions: [String]
  public var openblasLibrary: String
  public var openblasConfig: String
  public var openblasCore: String
  /// Where the core type came from: "pretext" (chosen from the CPU's features),
  /// "user" (OPENBLAS_CORETYPE was set), or "openblas" (its own detection).
  public var openblasCoreSource: String
  /// OPENBLAS_CORETYPE as the user set it, if they did.
  public var openblasCoreEnv: String?
  /// The core type Pretext chooses for this CPU when the user does not.
  public var openblasBestCore: String
  /// Advice when the kernels in use are slower than the CPU allows.
  public var note: String?
  public var threads: Int
  public var sgemmSize: Int
  public var sgemmGflops: Double
  /// The MPI library data-parallel runs would use (nil when there is none), its version,
  /// or why it cannot be used.
  public var mpiLibrary: String?
  public var mpiVersion: String?
  public var mpiProblem: String?
  /// Whether `mpirun` launched this process, and as which of how many.
  public var mpiLaunched: Bool
  public var mpiRank: Int?
  public var mpiSize: Int?

  enum CodingKeys: String, CodingKey {
    case pretextVersion = "pretext_version", cpu, cores
    case vectorExtensions = "vector_extensions"
    case openblasLibrary = "openblas_library", openblasConfig = "openblas_config"
    case openblasCore = "openblas_core", openblasCoreSource = "openblas_core_source"
    case openblasCoreEnv = "openblas_core_env", openblasBestCore = "openblas_best_core", note
    case threads, sgemmSize = "sgemm_size", sgemmGflops = "sgemm_gflops"
    case mpiLibrary = "mpi_library", mpiVersion = "mpi_version", mpiProblem = "mpi_problem"
    case mpiLaunched = "mpi_launched", mpiRank = "mpi_rank", mpiSize = "mpi_size"
  }

  /// Measures and gathers everything (takes about a second for the sgemm timing).
  public static func collect(version: String, sgemmSize: Int = 1024) throws -> SystemReport {
    try BLAS.load()
    let f = pretext_cpu_detect()
    let flags: [(String, Int32)] = [
      ("sse4.2", f.sse42), ("avx", f.avx), ("avx2", f.avx2), ("fma", f.fma),
      ("avx512f", f.avx512f), ("avx512bw", f.avx512bw), ("avx512dq", f.avx512dq),
      ("avx512vl", f.avx512vl), ("avx512_vnni", f.avx512_vnni), ("avx512_bf16", f.avx512_bf16),
      ("avx_vnni", f.avx_vnni), ("amx", f.amx),
    ]
    let source =
      BLAS.coreChosenByUser ? "user" : (BLAS.requestedCore.isEmpty ? "openblas" : "pretext")
    let userCore = BLAS.coreChosenByUser ? ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] : nil
    var note: String? = nil
    if let userCore, !BLAS.bestCore.isEmpty, userCore.lowercased() != BLAS.bestCore.lowercased() {
      note =
        "OPENBLAS_CORETYPE=\(userCore) is set in the environment, so Pretext uses it; this CPU supports "
        + "\(BLAS.bestCore) kernels, usually faster: unset OPENBLAS_CORETYPE to let Pretext choose them"
    }
    // MPI is only opened here (not initialized): doctor can run anywhere.
    var mpi: MPILibrary? = nil
    var mpiProblem: String? = nil
    do { mpi = try MPILibrary.load() } catch { mpiProblem = "\(error)" }
    let launch = MPILaunch.current
    return SystemReport(
      pretextVersion: version,
      cpu: String(cString: pretext_cpu_brand()).trimmingCharacters(in: .whitespaces),
      cores: ProcessInfo.processInfo.activeProcessorCount,
      vectorExtensions: flags.filter { $0.1 != 0 }.map(\.0),
      openblasLibrary: BLAS.libraryPath,
      openblasConfig: BLAS.config,
      openblasCore: BLAS.coreName,
      openblasCoreSource: source,
      openblasCoreEnv: userCore,
      openblasBestCore: BLAS.bestCore,
      note: note,
      threads: Parallel.threads,
      sgemmSize: sgemmSize,
      sgemmGflops: measureSgemm(size: sgemmSize),
      mpiLibrary: mpi?.path, mpiVersion: mpi?.version, mpiProblem: mpiProblem,
      mpiLaunched: launch != nil, mpiRank: launch?.rank, mpiSize: launch?.size)
  }

  /// Median GFLOP/s of a square sgemm over several runs after a warm-up.
  public static func measureSgemm(size n: Int, repeats: Int = 7) -> Double {
    var rng = RandomGenerator(seed: 1)
    let a = Tensor.uniform([n, n], low: -1, high: 1, using: &rng)
    let b = Tensor.uniform([n, n], low: -1, high: 1, using: &rng)
    let c = Tensor.zeros([n, n])
    var times: [Double] = []
    for i in 0..<(repeats + 1) {
      let t0 = DispatchTime.now().uptimeNanoseconds
      BLAS.sgemm(m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n)
      let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
      if i > 0 { times.append(dt) }
    }
    withExtendedLifetime((a, b, c)) {}
    times.sort()
    return 2 * Double(n * n * n) / times[times.count / 2] / 1e9
  }

  /// The human-readable form.
  public var text: String {
    """
    Pretext \(pretextVersion)
    CPU                \(cpu.isEmpty ? "unknown" : cpu), \(cores) core(s)
    vector extensions  \(vectorExtensions.joined(separator: " "))
    OpenBLAS           \(openblasLibrary)
      config           \(openblasConfig)
      core type        \(openblasCore) (chosen by \(openblasCoreSource))
    threads            \(threads)
    sgemm \(sgemmSize)³        \(String(format: "%.1f", sgemmGflops)) GFLOP/s
    MPI                \(mpiText)
      this process     \(launchText)
    """ + (note.map { "\nnote: \($0)" } ?? "")
  }

  var mpiText: String {
    guard let mpiLibrary else { return "not available: \(mpiProblem ?? "unknown reason")" }
    return "\(mpiLibrary) (\(mpiVersion ?? "unknown version"))"
  }

  var launchText: String {
    guard mpiLaunched, let mpiRank, let mpiSize else {
      return "not launched by mpirun (one process; `mpirun -np N pretext pretrain …` trains on N)"
    }
    return "process \(mpiRank) of \(mpiSize), launched by mpirun"
  }
}
