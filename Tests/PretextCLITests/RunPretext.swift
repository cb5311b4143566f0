import Foundation
import XCTest

/// The `pretext` executable next to the test bundle in the build folder.
func pretextExecutable() throws -> URL {
  var dir = Bundle.main.bundleURL
  for _ in 0..<4 {
    let candidate = dir.appendingPathComponent("pretext")
    if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    dir = dir.deletingLastPathComponent()
  }
  // A missing executable is a broken build, not a reason to skip the CLI tests.
  throw MissingExecutable(near: Bundle.main.bundleURL.path)
}

struct MissingExecutable: Error, CustomStringConvertible {
  let near: String
  var description: String {
    "the pretext executable is not in the build folder near \(near): the build is broken (make test builds it)"
  }
}

/// Runs pretext as a user would; `environment` entries override (or, when nil, remove)
/// variables of the test's environment.
func runPretext(_ args: [String], environment: [String: String?] = [:]) throws -> (status: Int32, out: String, err: String) {
  try runProcess(try pretextExecutable(), args, environment: environment)
}

/// Runs `executable` with `args` to its end and returns its status and both outputs.
func runProcess(_ executable: URL, _ args: [String], environment: [String: String?] = [:]) throws -> (
  status: Int32, out: String, err: String
) {
  let p = Process()
  p.executableURL = executable
  p.arguments = args
  var env = ProcessInfo.processInfo.environment
  for (k, v) in environment { env[k] = v }  // nil removes
  p.environment = env
  let out = Pipe(), err = Pipe()
  p.standardOutput = out
  p.standardError = err
  try p.run()
  // Read both pipes concurrently: a full stderr pipe must not block the child.
  nonisolated(unsafe) var errData = Data()
  let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
  reader.start()
  let o = out.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  while !reader.isFinished { usleep(1000) }
  return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// A fresh temporary folder `<prefix>-<UUID>` holding `fm/`, the Fashion-MNIST folders
/// that `pretext data import` makes from tiny IDX files (see `writeTinyFashionMNIST`).
func makeImportedTinyFashionMNIST(
  prefix: String, train: Int, test: Int, pixel: (_ image: Int, _ y: Int, _ x: Int) -> UInt8
) throws -> URL {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  try writeTinyFashionMNIST(to: dir.appendingPathComponent("idx"), train: train, test: test, pixel: pixel)
  let r = try runPretext([
    "data", "import", "fashion-mnist", "--source", dir.appendingPathComponent("idx").path, "--out",
    dir.appendingPathComponent("fm").path,
  ])
  XCTAssertEqual(r.status, 0, r.err)
  return dir
}

/// Writes Fashion-MNIST-shaped plain IDX files (28×28 images, labels i % 10) into
/// `folder`, for `pretext data import fashion-mnist --source folder`. `pixel(i, y, x)`
/// gives image i's pixels.
func writeTinyFashionMNIST(
  to folder: URL, train: Int, test: Int, pixel: (_ image: Int, _ y: Int, _ x: Int) -> UInt8
) throws {
  try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  func images(_ n: Int) -> Data {
    var d = Data([0, 0, 8, 3, 0, 0, 0, UInt8(n), 0, 0, 0, 28, 0, 0, 0, 28])
    for i in 0..<n {
      for y in 0..<28 {
        for x in 0..<28 { d.append(pixel(i, y, x)) }
      }
    }
    return d
  }
  func labels(_ n: Int) -> Data {
    var d = Data([0, 0, 8, 1, 0, 0, 0, UInt8(n)])
    for i in 0..<n { d.append(UInt8(i % 10)) }
    return d
  }
  try images(train).write(to: folder.appendingPathComponent("train-images-idx3-ubyte"))
  try labels(train).write(to: folder.appendingPathComponent("train-labels-idx1-ubyte"))
  try images(test).write(to: folder.appendingPathComponent("t10k-images-idx3-ubyte"))
  try labels(test).write(to: folder.appendingPathComponent("t10k-labels-idx1-ubyte"))
}
