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
  throw XCTSkip("pretext executable not found near \(Bundle.main.bundleURL.path); build it first")
}

/// Runs pretext as a user would; `environment` entries override (or, when nil, remove)
/// variables of the test's environment.
func runPretext(_ args: [String], environment: [String: String?] = [:]) throws -> (status: Int32, out: String, err: String) {
  let p = Process()
  p.executableURL = try pretextExecutable()
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
