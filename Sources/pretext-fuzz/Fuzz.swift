import Autograd
import Experiments
import Foundation
import NN
import Support
import Vision

// Fuzz entry points for the parsers of untrusted files: safetensors weights, IDX
// datasets and YAML experiment configs. Each must turn any input into a value or a
// clear error — never a crash, hang or sanitizer report.
//
// Built normally, this is a replay tool: `pretext-fuzz TARGET FILE...` runs the target
// on each file (for reproducing a crash). Built with libFuzzer (see
// Tests/Fuzz/run-swift-fuzzers.sh: -sanitize=fuzzer,address -D FUZZING), libFuzzer
// drives `LLVMFuzzerTestOneInput` and the target is chosen by PRETEXT_FUZZ_TARGET.

enum FuzzTarget: String, CaseIterable {
  case safetensors, idx, config

  func run(_ bytes: [UInt8]) {
    switch self {
    case .safetensors:
      _ = try? SafeTensors.decode(bytes, source: "fuzz")
    case .idx:
      bytes.withUnsafeBytes { raw in _ = try? IDX.parse(raw, path: "fuzz") }
    case .config:
      // The loader reads files: write the input to a per-process temporary file.
      let path = NSTemporaryDirectory() + "pretext-fuzz-config-\(getpid()).yaml"
      guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return }
      _ = try? ExperimentConfig.load(path: path)
    }
  }
}

#if FUZZING
  nonisolated(unsafe) let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["PRETEXT_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
      fatalError("set PRETEXT_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue))")
    }
    return t
  }()

  @_cdecl("LLVMFuzzerTestOneInput")
  public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    selectedTarget.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
  }

  // SwiftPM links an executable's entry point as `<module>_main`; hand control to
  // libFuzzer's driver from there.
  @_silgen_name("LLVMFuzzerRunDriver")
  func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
  ) -> Int32

  @_cdecl("pretext_fuzz_main")
  public func fuzzMain(
    _ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
  ) -> Int32 {
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector) { data, size in fuzzOne(data, size) }
  }
#else
  @main
  struct Replay {
    static func main() {
      let args = CommandLine.arguments.dropFirst()
      guard let name = args.first, let target = FuzzTarget(rawValue: name), args.count >= 2 else {
        print("usage: pretext-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE...")
        exit(2)
      }
      for file in args.dropFirst() {
        guard let bytes = try? readFileBytes(file) else {
          print("\(file): cannot read")
          continue
        }
        target.run(bytes)
        print("\(file): ok")
      }
    }
  }
#endif
