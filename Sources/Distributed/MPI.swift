import Autograd
import CMPI
import Support

#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif

/// How this process was launched, from the environment `mpirun` sets (Open MPI's
/// `OMPI_COMM_WORLD_*`, or PMIx's `PMIX_RANK` with the size from Open MPI): read without
/// initializing MPI, so `pretext doctor` can report it and the thread count can be chosen
/// before anything starts.
public struct MPILaunch: Sendable, Equatable {
  public var rank: Int
  public var size: Int
  /// Processes of the job on this machine (they share its cores).
  public var localSize: Int

  /// The launch `mpirun` describes in the environment, or nil outside `mpirun`.
  public static var current: MPILaunch? {
    func int(_ name: String) -> Int? { getenv(name).flatMap { Int(String(cString: $0)) } }
    guard let size = int("OMPI_COMM_WORLD_SIZE") ?? int("PMI_SIZE"),
      let rank = int("OMPI_COMM_WORLD_RANK") ?? int("PMIX_RANK") ?? int("PMI_RANK")
    else { return nil }
    return MPILaunch(rank: rank, size: size, localSize: int("OMPI_COMM_WORLD_LOCAL_SIZE") ?? size)
  }
}

/// The MPI library Pretext would use (`pretext doctor`).
public struct MPILibrary: Sendable, Equatable {
  public var path: String
  /// MPI_Get_library_version's text, first line ("Open MPI v4.1.4, package: …").
  public var version: String

  /// Opens the library (without initializing MPI); throws a message naming the package
  /// to install when there is none.
  public static func load() throws -> MPILibrary {
    var message = [CChar](repeating: 0, count: 768)
    guard pretext_mpi_load(&message, message.count) == 0 else { throw RuntimeError(cString(message)) }
    let version = String(cString: pretext_mpi_library_version())
    return MPILibrary(
      path: String(cString: pretext_mpi_library_path()),
      version: String(version.split(separator: "\n").first ?? "").filter { $0 != "\r" })
  }
}

/// The processes of a job launched by `mpirun` (MPI_COMM_WORLD), through Open MPI opened
/// at run time (see Sources/CMPI/include/pretext_mpi.h).
public final class MPIProcessGroup: Communicator {
  public let rank: Int
  public let size: Int

  nonisolated(unsafe) private static var world: MPIProcessGroup?

  private init(rank: Int, size: Int) {
    self.rank = rank
    self.size = size
  }

  /// Initializes MPI (once; later calls return the same group). Call from the main
  /// thread, which then is the only one to communicate.
  public static func initialize() throws -> MPIProcessGroup {
    if let world { return world }
    var message = [CChar](repeating: 0, count: 768)
    var rank: Int32 = 0, size: Int32 = 0
    guard pretext_mpi_init(&rank, &size, &message, message.count) == 0 else {
      throw RuntimeError("mpirun launched this process, but MPI cannot start: \(cString(message))")
    }
    let group = MPIProcessGroup(rank: Int(rank), size: Int(size))
    world = group
    return group
  }

  /// Ends MPI in this process (after the last collective).
  public func finalize() { pretext_mpi_finalize() }

  /// Ends every process of the job with `code` (after an error on one of them: the
  /// others would otherwise wait for it forever in the next collective).
  public func abort(code: Int32) -> Never {
    pretext_mpi_abort(code)
    exit(code)
  }

  public func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) {
    pretext_mpi_allreduce_sum_float(values, count)
  }
  public func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) {
    pretext_mpi_allreduce_sum_double(values, count)
  }
  public func allGather(_ send: UnsafeRawPointer, bytes: Int, into receive: UnsafeMutableRawPointer) {
    pretext_mpi_allgather_bytes(send, bytes, receive)
  }
  public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {
    pretext_mpi_broadcast_bytes(buffer, bytes, Int32(root))
  }
}

private func cString(_ chars: [CChar]) -> String {
  String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
