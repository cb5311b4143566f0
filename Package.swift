// swift-tools-version:6.0
import PackageDescription

// The numeric modules are always compiled optimized (also in debug builds and tests):
// unoptimized tensor code is 20-50x slower and would make the test suite crawl.
// `-target-cpu native` lets the compiler vectorize element-wise kernels for the machine
// that builds Pretext (AVX2/AVX-512 where present); Pretext is built where it runs.
let engineSwiftFlags: [SwiftSetting] = [
  .unsafeFlags(["-O", "-enforce-exclusivity=unchecked", "-target-cpu", "native"])
]
let engineCFlags: [CSetting] = [.unsafeFlags(["-O3", "-march=native"])]

let package = Package(
  name: "Pretext",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "pretext", targets: ["pretext"]),
    // For tests only: a simulated small or read-only disk, loaded with LD_PRELOAD
    // (Tests/DiskFaults/disk_faults.c).
    .library(name: "PretextDiskFaults", type: .dynamic, targets: ["DiskFaults"]),
    .library(name: "Autograd", targets: ["Autograd"]),
    .library(name: "Vision", targets: ["Vision"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
  ],
  targets: [
    // OpenBLAS, loaded at run time (dlopen) so that the kernel core type can be chosen
    // before OpenBLAS initializes itself; see Sources/CBLAS/blas_loader.c.
    .target(name: "CBLAS", cSettings: engineCFlags, linkerSettings: [.linkedLibrary("dl")]),
    // Open MPI, loaded at run time (dlopen) when Pretext is launched by mpirun, so that it
    // builds and runs without MPI; see Sources/CMPI/include/pretext_mpi.h.
    .target(name: "CMPI", cSettings: engineCFlags, linkerSettings: [.linkedLibrary("dl")]),
    // libpng behind setjmp: libpng's longjmp error path never crosses a Swift frame.
    .target(
      name: "CPNG", cSettings: engineCFlags, linkerSettings: [.linkedLibrary("png16")]),
    // libjpeg-turbo (the libjpeg API) behind setjmp, like CPNG; see Sources/CJPEG/include/cjpeg.h.
    .target(
      name: "CJPEG", cSettings: engineCFlags, linkerSettings: [.linkedLibrary("jpeg")]),
    // zlib, for gzip-compressed dataset files (Debian's Fashion-MNIST IDX files).
    .target(name: "CZlib", cSettings: engineCFlags, linkerSettings: [.linkedLibrary("z")]),
    // Files, atomic writes, hashing and formatting that every module shares; below all
    // other Pretext modules (Foundation only).
    .target(name: "Support", swiftSettings: engineSwiftFlags),
    .target(name: "Autograd", dependencies: ["Support", "CBLAS"], swiftSettings: engineSwiftFlags),
    // The processes of a run launched by mpirun, through Open MPI (CMPI).
    .target(name: "Distributed", dependencies: ["Support", "Autograd", "CMPI"], swiftSettings: engineSwiftFlags),
    .target(name: "Vision", dependencies: ["Support", "CPNG", "CJPEG", "CZlib", "Autograd"], swiftSettings: engineSwiftFlags),
    .target(name: "NN", dependencies: ["Support", "Autograd"], swiftSettings: engineSwiftFlags),
    .target(name: "Backbones", dependencies: ["Support", "NN", "Autograd"], swiftSettings: engineSwiftFlags),
    // Optimizers, learning-rate and momentum schedules, moving averages: below Tasks, so
    // that a task can own a momentum target network.
    .target(name: "Optimization", dependencies: ["Support", "NN", "Autograd"], swiftSettings: engineSwiftFlags),
    .target(
      name: "Tasks", dependencies: ["Support", "Optimization", "Backbones", "NN", "Autograd", "Vision"],
      swiftSettings: engineSwiftFlags),
    .target(
      name: "Training", dependencies: ["Support", "Optimization", "Tasks", "Backbones", "NN", "Autograd", "Vision"],
      swiftSettings: engineSwiftFlags),
    .target(
      name: "Diagnostics",
      dependencies: [
        "Support", "Distributed", "Autograd", "CBLAS", "Vision", "Backbones", "Tasks", "Optimization", "Training", "NN",
      ],
      swiftSettings: engineSwiftFlags),
    .target(
      name: "Experiments",
      dependencies: [
        "Support", "Training", "Evaluation", "Tasks", "Backbones", "NN", "Vision", "Autograd", .product(name: "Yams", package: "Yams"),
      ],
      swiftSettings: engineSwiftFlags),
    .target(
      name: "Evaluation", dependencies: ["Support", "Optimization", "Backbones", "NN", "Autograd", "Vision"],
      swiftSettings: engineSwiftFlags),
    .executableTarget(
      name: "pretext",
      dependencies: [
        "Support", "Autograd", "Distributed", "Vision", "Diagnostics", "NN", "Backbones", "Optimization", "Tasks", "Training",
        "Experiments", "Evaluation",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .target(name: "DiskFaults", path: "Tests/DiskFaults", linkerSettings: [.linkedLibrary("dl")]),
    // Fuzz entry points (a replay tool in normal builds): Tests/Fuzz/run-swift-fuzzers.sh.
    .executableTarget(
      name: "pretext-fuzz", dependencies: ["Support", "Autograd", "NN", "Vision", "Experiments"], swiftSettings: engineSwiftFlags),
    .testTarget(
      name: "AutogradTests", dependencies: ["Autograd"],
      resources: [.copy("Fixtures")], swiftSettings: engineSwiftFlags),
    .testTarget(name: "SupportTests", dependencies: ["Support"]),
    .testTarget(
      name: "ExperimentsTests", dependencies: ["Experiments", "Evaluation", "Backbones", "Tasks", "Vision", "Autograd"]),
    .testTarget(
      name: "OptimizationTests", dependencies: ["Optimization", "NN", "Autograd"], swiftSettings: engineSwiftFlags),
    .testTarget(name: "TasksTests", dependencies: ["Tasks", "Backbones", "NN", "Autograd", "Vision"], swiftSettings: engineSwiftFlags),
    .testTarget(
      name: "TrainingTests", dependencies: ["Training", "Optimization", "Tasks", "Backbones", "Vision", "NN", "Autograd"],
      swiftSettings: engineSwiftFlags),
    .testTarget(name: "BackbonesTests", dependencies: ["Support", "Backbones", "NN"], resources: [.copy("Fixtures")], swiftSettings: engineSwiftFlags),
    .testTarget(
      name: "VisionTests", dependencies: ["Vision", "CJPEG"],
      resources: [.copy("Fixtures")]),
    .testTarget(
      name: "EvaluationTests", dependencies: ["Support", "Evaluation", "Backbones", "NN", "Autograd", "Vision"],
      swiftSettings: engineSwiftFlags),
    .testTarget(name: "PretextCLITests", dependencies: ["pretext", "Diagnostics", "Vision", "NN"]),
  ]
)
