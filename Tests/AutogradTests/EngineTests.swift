import Autograd
import Foundation
import XCTest

/// The tape, random numbers, errors and runtime pieces of the engine.
final class TapeTests: XCTestCase {
  func testFanOutAccumulates() throws {
    // y = x·x + x → dy/dx = 2x + 1 (x is used three times).
    let x = try Tensor(shape: [3], [1, -2, 0.5], requiresGrad: true)
    let y = try (x * x + x).sum()
    try y.backward()
    XCTAssertEqual(x.grad?.scalars, [3, -3, 2])
  }

  func testGradientsAccumulateAcrossBackwardCalls() throws {
    let x = try Tensor(shape: [2], [1, 2], requiresGrad: true)
    try (x * 3).sum().backward()
    try (x * x).sum().backward()
    XCTAssertEqual(x.grad?.scalars, [3 + 2, 3 + 4])
    x.zeroGrad()
    XCTAssertNil(x.grad)
  }

  func testSharedGradientBufferIsNotCorrupted() throws {
    // add hands the same gradient tensor to both inputs; accumulating into one of them
    // must not change the other.
    let a = try Tensor(shape: [2], [1, 2], requiresGrad: true)
    let b = try Tensor(shape: [2], [3, 4], requiresGrad: true)
    let s = try a + b
    let y = try (s + a).sum()  // a twice, b once
    try y.backward()
    XCTAssertEqual(a.grad?.scalars, [2, 2])
    XCTAssertEqual(b.grad?.scalars, [1, 1])
  }

  func testNoGradScopeRecordsNothing() throws {
    let w = try Tensor(shape: [2], [1, 2], requiresGrad: true)
    let y = try withoutGradients { try w * w }
    XCTAssertFalse(y.requiresGrad)
    XCTAssertThrowsError(try y.sum().backward())
    // Recording resumes after the scope.
    XCTAssertTrue(try (w * w).requiresGrad)
  }

  func testDetachedStopsGradient() throws {
    let x = try Tensor(shape: [2], [1, 2], requiresGrad: true)
    let y = try (x * x.detached()).sum()
    try y.backward()
    XCTAssertEqual(x.grad?.scalars, [1, 2])
  }

  func testSecondBackwardThroughOneGraphIsRefused() throws {
    let x = try Tensor(shape: [2], [1, 2], requiresGrad: true)
    let h = try x * x
    let y = try h.sum()
    try y.backward()
    XCTAssertEqual(x.grad?.scalars, [2, 4])
    XCTAssertThrowsError(try y.backward()) { e in
      XCTAssertTrue("\(e)".contains("already used by a backward pass"), "\(e)")
    }
    // A new loss over an intermediate of the used graph is refused too.
    XCTAssertThrowsError(try (h * 3).sum().backward()) { e in
      XCTAssertTrue("\(e)".contains("already used by a backward pass"), "\(e)")
    }
    XCTAssertEqual(x.grad?.scalars, [2, 4], "the refused passes must not touch the gradient")
  }

  func testBackwardNeedsSeedForNonScalar() throws {
    let x = try Tensor(shape: [2], [1, 2], requiresGrad: true)
    XCTAssertThrowsError(try (x * 2).backward()) { e in
      XCTAssertTrue("\(e)".contains("seed"), "\(e)")
    }
  }
}

final class RandomTests: XCTestCase {
  func testSameSeedSameNumbers() {
    var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42), c = RandomGenerator(seed: 43)
    let xa = (0..<100).map { _ in a.next() }, xb = (0..<100).map { _ in b.next() }
    let xc = (0..<100).map { _ in c.next() }
    XCTAssertEqual(xa, xb)
    XCTAssertNotEqual(xa, xc)
  }

  func testStateRestoresTheSequence() throws {
    var a = RandomGenerator(seed: 9)
    _ = (0..<10).map { _ in a.next() }
    var b = try XCTUnwrap(RandomGenerator(state: a.state))
    XCTAssertEqual((0..<10).map { _ in a.nextNormal() }, (0..<10).map { _ in b.nextNormal() })
    XCTAssertNil(RandomGenerator(state: [0, 0, 0, 0]))
  }

  /// Pins the generator's output: a change here changes every seeded run.
  /// The generator against the authors' reference code (xoshiro256starstar.c and
  /// splitmix64.c, Blackman & Vigna): the first ten outputs from the state {1, 2, 3, 4}
  /// (the vector that rand_xoshiro's tests took from the reference implementation), the
  /// SplitMix64 words that seed 0 gives (0xE220A8397B1DCDAF is SplitMix64's well-known
  /// first output for 0), and the first outputs of seed 42.
  func testKnownFirstValues() throws {
    var reference = try XCTUnwrap(RandomGenerator(state: [1, 2, 3, 4]))
    XCTAssertEqual(
      (0..<10).map { _ in reference.next() },
      [
        11520, 0, 1_509_978_240, 1_215_971_899_390_074_240, 1_216_172_134_540_287_360, 607_988_272_756_665_600,
        16_172_922_978_634_559_625, 8_476_171_486_693_032_832, 10_595_114_339_597_558_777, 2_904_607_092_377_533_576,
      ])
    XCTAssertEqual(
      RandomGenerator(seed: 0).state, [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F, 0xF88B_B8A8_724C_81EC])
    var seeded = RandomGenerator(seed: 42)
    XCTAssertEqual(
      (0..<3).map { _ in seeded.next() }, [1_546_998_764_402_558_742, 6_990_951_692_964_543_102, 12_544_586_762_248_559_009])
  }

  func testDistributions() {
    var rng = RandomGenerator(seed: 5)
    let n = 200_000
    let t = Tensor.randn([n], mean: 1, std: 2, using: &rng)
    let values = t.scalars.map(Double.init)
    let mean = values.reduce(0, +) / Double(n)
    let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)).squareRoot()
    XCTAssertEqual(mean, 1, accuracy: 0.02)
    XCTAssertEqual(std, 2, accuracy: 0.02)
    let u = Tensor.uniform([n], low: -3, high: 5, using: &rng).scalars
    XCTAssertGreaterThanOrEqual(u.min()!, -3)
    XCTAssertLessThan(u.max()!, 5)
    XCTAssertEqual(Double(u.reduce(0, +)) / Double(n), 1, accuracy: 0.03)
    let p = rng.permutation(1000)
    XCTAssertEqual(p.sorted(), Array(0..<1000))
    XCTAssertNotEqual(p, Array(0..<1000))
  }
}

final class ErrorTests: XCTestCase {
  func message(_ body: () throws -> Any) -> String {
    do {
      _ = try body()
      return "no error"
    } catch {
      return "\(error)"
    }
  }

  func testShapeErrorsNameTheOpAndShapes() throws {
    let a = Tensor.zeros([256, 192]), b = Tensor.zeros([128, 64])
    XCTAssertEqual(message { try matmul(a, b) }, "matmul: [256, 192] × [128, 64]: inner dimensions differ (192 vs 128)")
    XCTAssertEqual(
      message { try Tensor.zeros([2, 3]) + Tensor.zeros([4]) },
      "add: [2, 3] and [4] cannot be broadcast together (axis 1: 3 vs 4)")
    XCTAssertTrue(message { try Tensor.zeros([6]).reshaped([4, 2]) }.hasPrefix("reshape: [6]"))
    XCTAssertTrue(message { try conv2d(Tensor.zeros([1, 3, 8, 8]), weight: Tensor.zeros([4, 2, 3, 3])) }.hasPrefix("conv2d: "))
    XCTAssertTrue(message { try Tensor.zeros([2, 3]).sum(axes: [2]) }.contains("axis 2 is out of range"))
    XCTAssertTrue(message { try crossEntropy(Tensor.zeros([2, 3]), targets: [0, 3]) }.contains("target 3"))
    XCTAssertTrue(message { try Tensor.zeros([2, 3]).gather(axis: 1, index: IndexTensor(shape: [2, 1], [0, 5])) }.contains("index 5"))
    XCTAssertTrue(message { try Tensor(shape: [2, 2], [1, 2, 3]) }.contains("needs 4 values, got 3"))
    XCTAssertTrue(message { try layerNorm(Tensor.zeros([2, 4]), weight: Tensor.zeros([3]), bias: nil) }.hasPrefix("layer_norm: weight [3]"))
  }

  func testNonFiniteReport() throws {
    let ok = try Tensor(shape: [3], [1, 2, 3])
    XCTAssertNil(ok.nonFiniteReport())
    XCTAssertTrue(ok.isFinite)
    let bad = try Tensor(shape: [5], [1, .nan, 3, .infinity, -.infinity])
    let report = try XCTUnwrap(bad.nonFiniteReport())
    XCTAssertEqual([report.nanCount, report.infCount, report.firstIndex], [1, 2, 1])
    let found = try XCTUnwrap(firstNonFinite([("a.weight", ok), ("b.bias", bad)]))
    XCTAssertEqual(found.name, "b.bias")
  }
}

final class FastMathTests: XCTestCase {
  func testAgainstTheCLibrary() {
    var maxExpRel: Float = 0, maxTanh: Float = 0, maxErf: Float = 0
    var x: Float = -20
    while x <= 20 {
      let e = Foundation.exp(x)
      maxExpRel = max(maxExpRel, abs(FastMath.exp(x) - e) / e)
      maxTanh = max(maxTanh, abs(FastMath.tanh(x) - Foundation.tanh(x)))
      maxErf = max(maxErf, abs(FastMath.erf(x) - Foundation.erf(x)))
      x += 0.001
    }
    XCTAssertLessThan(maxExpRel, 3e-7)
    XCTAssertLessThan(maxTanh, 5e-7)
    XCTAssertLessThan(maxErf, 6e-7)  // A&S 7.1.26's 1.5e-7 plus float rounding
    // Small-argument tanh keeps relative accuracy.
    XCTAssertEqual(FastMath.tanh(1e-4) / Foundation.tanh(1e-4), 1, accuracy: 1e-6)
  }

  func testSpecialValues() {
    XCTAssertEqual(FastMath.exp(0), 1)
    XCTAssertEqual(FastMath.exp(-200), 0)
    XCTAssertEqual(FastMath.exp(200), .infinity)
    XCTAssertTrue(FastMath.exp(.nan).isNaN)
    XCTAssertEqual(FastMath.tanh(50), 1)
    XCTAssertEqual(FastMath.tanh(-50), -1)
    XCTAssertEqual(FastMath.sigmoid(-100), 0, accuracy: 1e-30)
    XCTAssertEqual(FastMath.sigmoid(100), 1)
  }

  func testSoftmaxIsStableForLargeLogits() throws {
    let x = try Tensor(shape: [1, 3], [1000, 1001, 999])
    let y = try x.softmax().scalars
    XCTAssertTrue(y.allSatisfy { $0.isFinite })
    XCTAssertEqual(y.reduce(0, +), 1, accuracy: 1e-6)
    let ce = try crossEntropy(try Tensor(shape: [1, 2], [1000, -1000]), targets: [1]).item()
    XCTAssertEqual(ce, 2000, accuracy: 1e-2)
  }
}

final class BLASTests: XCTestCase {
  /// sgemm with the core type Pretext chose, against a naive triple loop, on odd sizes
  /// and every transpose combination.
  func testSgemmMatchesNaive() throws {
    try BLAS.load()
    var rng = RandomGenerator(seed: 3)
    for (m, n, k) in [(1, 1, 1), (7, 13, 5), (65, 64, 65), (129, 33, 257)] {
      for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = Tensor.uniform(ta ? [k, m] : [m, k], low: -1, high: 1, using: &rng)
        let b = Tensor.uniform(tb ? [n, k] : [k, n], low: -1, high: 1, using: &rng)
        let c = try matmul(a, b, transposeA: ta, transposeB: tb)
        var worst: Float = 0
        for i in 0..<m {
          for j in 0..<n {
            var s: Double = 0
            for p in 0..<k {
              let av = ta ? a.data[p * m + i] : a.data[i * k + p]
              let bv = tb ? b.data[j * k + p] : b.data[p * n + j]
              s += Double(av) * Double(bv)
            }
            worst = max(worst, abs(Float(s) - c.data[i * n + j]))
          }
        }
        XCTAssertLessThan(worst, 1e-4 * Float(k), "sgemm \(m)×\(n)×\(k) ta=\(ta) tb=\(tb) (core \(BLAS.coreName))")
      }
    }
  }

  func testCoreTypeIsChosenForThisCPU() throws {
    try BLAS.load()
    XCTAssertFalse(BLAS.coreName.isEmpty)
    // Pretext chooses a core only on x86-64 with AVX2 or AVX-512 (blas_loader.c); elsewhere
    // OpenBLAS's own choice stands.
    #if arch(x86_64)
      let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
        .split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ") ?? []
      let chooses = flags.contains("avx2")
    #else
      let chooses = false
    #endif
    if !BLAS.coreChosenByUser && chooses {
      XCTAssertFalse(BLAS.requestedCore.isEmpty, "Pretext should pick a core type on x86-64 with AVX2")
      XCTAssertEqual(BLAS.coreName.lowercased(), BLAS.requestedCore.lowercased())
    }
  }

  func testThreadedKernelsAreDeterministic() throws {
    var rng = RandomGenerator(seed: 4)
    let x = Tensor.uniform([8, 4, 9, 9], low: -1, high: 1, using: &rng).requiringGrad()
    let w = Tensor.uniform([6, 4, 3, 3], low: -1, high: 1, using: &rng).requiringGrad()
    func run() throws -> ([Float], [Float]) {
      x.zeroGrad()
      w.zeroGrad()
      let y = try layerNorm(conv2d(x, weight: w, options: Conv2dOptions(padding: 1)), weight: nil, bias: nil)
      try y.sum().backward()
      return (x.grad!.scalars, w.grad!.scalars)
    }
    let first = try run(), second = try run()
    XCTAssertTrue(first.0 == second.0 && first.1 == second.1, "two identical runs gave different gradients")
    XCTAssertTrue(first.1.allSatisfy { $0.isFinite && abs($0) < 1e4 })
  }
}

final class StorageTests: XCTestCase {
  func testAlignmentAndPoolReuse() {
    let pool = BufferPool.shared
    do {
      let t = Tensor.zeros([100_000])
      XCTAssertEqual(Int(bitPattern: t.data) % 64, 0)
    }
    let before = pool.statistics.reuses
    for _ in 0..<10 { _ = Tensor.zeros([100_000]) }
    XCTAssertGreaterThanOrEqual(pool.statistics.reuses - before, 10)
  }
}
