import Autograd
import XCTest

/// Every differentiable op's backward pass against central differences.
final class GradientTests: XCTestCase {
  let gc = GradientCheck()

  func testElementwiseBinaryWithBroadcasting() throws {
    var r = Inputs(seed: 1)
    try gc.check("add", [r.uniform([2, 3, 4]), r.uniform([4])]) { try $0[0] + $0[1] }
    try gc.check("sub", [r.uniform([2, 1, 4]), r.uniform([3, 1])]) { try $0[0] - $0[1] }
    try gc.check("mul", [r.uniform([2, 3, 4]), r.uniform([2, 1, 4])]) { try $0[0] * $0[1] }
    try gc.check("div", [r.uniform([3, 4]), r.uniform([4], 0.5, 2)]) { try $0[0] / $0[1] }
    try gc.check("pow tensor", [r.uniform([3, 4], 0.5, 2), r.uniform([4], -1, 2)]) { try $0[0].pow($0[1]) }
    try gc.check("maximum", [r.distinct([3, 4]), r.distinct([4]) + 0.05]) { try $0[0].maximum($0[1]) }
    try gc.check("scalar ops", [r.uniform([5])]) { try ((2 * $0[0] + 1) - 3) / 4 - (-$0[0]) }
    try gc.check("scalar minus tensor", [r.uniform([5])]) { 1 - $0[0] }
  }

  func testUnaryMathAndActivations() throws {
    var r = Inputs(seed: 2)
    try gc.check("square", [r.uniform([10])]) { $0[0].pow(2) }
    try gc.check("pow 3", [r.uniform([10])]) { $0[0].pow(3) }
    try gc.check("pow 0.5", [r.uniform([10], 0.5, 2)]) { $0[0].pow(0.5) }
    try gc.check("exp", [r.uniform([10], -3, 3)]) { $0[0].exp() }
    try gc.check("log", [r.uniform([10], 0.5, 3)]) { $0[0].log() }
    try gc.check("sqrt", [r.uniform([10], 0.5, 3)]) { $0[0].sqrt() }
    try gc.check("rsqrt", [r.uniform([10], 0.5, 3)]) { $0[0].rsqrt() }
    try gc.check("abs", [r.awayFromZero([10])]) { $0[0].abs() }
    let clampInput = try Tensor(shape: [6], [-2, -0.7, -0.2, 0.3, 0.8, 2])
    try gc.check("clamp", [clampInput]) { $0[0].clamp(min: -1, max: 1) }
    try gc.check("tanh", [r.uniform([20], -3, 3)]) { $0[0].tanh() }
    try gc.check("sigmoid", [r.uniform([20], -4, 4)]) { $0[0].sigmoid() }
    try gc.check("relu", [r.awayFromZero([20])]) { $0[0].relu() }
    try gc.check("gelu erf", [r.uniform([40], -4, 4)]) { $0[0].gelu(.erf) }
    try gc.check("gelu tanh", [r.uniform([40], -4, 4)]) { $0[0].gelu(.tanh) }
  }

  func testDropoutUsesItsMask() throws {
    var r = Inputs(seed: 3)
    try gc.check("dropout", [r.uniform([50])]) { x in
      var rng = RandomGenerator(seed: 7)  // the same mask on every evaluation
      return try x[0].dropout(0.3, training: true, using: &rng)
    }
  }

  func testReductions() throws {
    var r = Inputs(seed: 4)
    try gc.check("sum all", [r.uniform([3, 4])]) { try $0[0].sum() }
    try gc.check("sum axes", [r.uniform([2, 3, 4])]) { try $0[0].sum(axes: [0, 2]) }
    try gc.check("sum keepdims", [r.uniform([2, 3, 4])]) { try $0[0].sum(axes: [-1], keepDims: true) }
    try gc.check("mean", [r.uniform([2, 3, 4])]) { try $0[0].mean(axes: [1]) }
    try gc.check("var", [r.uniform([3, 5])]) { try $0[0].variance(axes: [1], correction: 1) }
    try gc.check("var population", [r.uniform([3, 5])]) { try $0[0].variance(axes: [0], correction: 0, keepDims: true) }
    try gc.check("max axis", [r.distinct([3, 4, 2])]) { try $0[0].max(axis: 1) }
    try gc.check("max all", [r.distinct([3, 4])]) { try $0[0].max() }
  }

  func testMovement() throws {
    var r = Inputs(seed: 5)
    try gc.check("reshape", [r.uniform([2, 6])]) { try $0[0].reshaped([3, -1]) * $0[0].reshaped([3, 4]) }
    try gc.check("permute", [r.uniform([2, 3, 4])]) { try $0[0].permuted([2, 0, 1]) }
    try gc.check("transpose", [r.uniform([2, 3, 4])]) { try $0[0].transposed(0, 2) }
    try gc.check("slice", [r.uniform([3, 5, 2])]) { try $0[0].sliced(axis: 1, 1..<4) }
    try gc.check("concat", [r.uniform([2, 3]), r.uniform([2, 1])]) { try Tensor.concat($0, axis: 1) }
    try gc.check("stack", [r.uniform([2, 3]), r.uniform([2, 3])]) { try Tensor.stack($0, axis: 1) }
    try gc.check("pad", [r.uniform([2, 3])]) { try $0[0].padded([(1, 0), (2, 1)], value: 0.5) }
    try gc.check("expand", [r.uniform([3, 1])]) { try $0[0].expanded(to: [2, 3, 4]) }
    try gc.check("squeeze/unsqueeze/flatten", [r.uniform([2, 1, 3])]) {
      try $0[0].squeezed(1).unsqueezed(0).flattened(from: 1)
    }
    let index = try IndexTensor(shape: [2, 3, 2], [0, 3, 1, 1, 2, 0, 3, 3, 0, 1, 2, 2])
    try gc.check("gather", [r.uniform([2, 4, 2])]) { try $0[0].gather(axis: 1, index: index) }
    let scatterIndex = try IndexTensor(shape: [2, 2, 2], [0, 3, 1, 2, 2, 0, 3, 1])
    try gc.check("scatter", [r.uniform([2, 4, 2]), r.uniform([2, 2, 2])]) {
      try $0[0].scattering(axis: 1, index: scatterIndex, source: $0[1])
    }
  }

  func testMatmulAllTransposes() throws {
    var r = Inputs(seed: 6)
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
      let a = ta ? r.uniform([4, 3]) : r.uniform([3, 4])
      let b = tb ? r.uniform([5, 4]) : r.uniform([4, 5])
      try gc.check("matmul ta=\(ta) tb=\(tb)", [a, b]) { try matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
      let ab = ta ? r.uniform([2, 4, 3]) : r.uniform([2, 3, 4])
      let bb = tb ? r.uniform([2, 5, 4]) : r.uniform([2, 4, 5])
      try gc.check("batched matmul ta=\(ta) tb=\(tb)", [ab, bb]) {
        try matmul($0[0], $0[1], transposeA: ta, transposeB: tb)
      }
      try gc.check("batched × shared ta=\(ta) tb=\(tb)", [ab, b]) {
        try matmul($0[0], $0[1], transposeA: ta, transposeB: tb)
      }
    }
  }

  func testLinear() throws {
    var r = Inputs(seed: 7)
    try gc.check("linear", [r.uniform([2, 3, 4]), r.uniform([5, 4]), r.uniform([5])]) {
      try linear($0[0], weight: $0[1], bias: $0[2])
    }
    try gc.check("linear no bias", [r.uniform([3, 4]), r.uniform([2, 4])]) { try linear($0[0], weight: $0[1]) }
  }

  func testConv2d() throws {
    var r = Inputs(seed: 8)
    let cases: [(String, [Int], [Int], Conv2dOptions, Bool)] = [
      ("3x3 pad 1", [2, 3, 5, 5], [4, 3, 3, 3], Conv2dOptions(padding: 1), true),
      ("stride 2", [1, 2, 7, 6], [3, 2, 3, 3], Conv2dOptions(stride: 2, padding: 1), false),
      ("dilation 2", [1, 2, 7, 7], [2, 2, 3, 3], Conv2dOptions(padding: 2, dilation: 2), true),
      ("groups 2", [2, 4, 5, 5], [6, 2, 3, 3], Conv2dOptions(padding: 1, groups: 2), true),
      ("1x1", [2, 3, 4, 4], [5, 3, 1, 1], Conv2dOptions(), true),
      ("rect", [1, 2, 5, 6], [2, 2, 2, 3], Conv2dOptions(stride: (1, 2), padding: (0, 1)), false),
      // Small images: several per GEMM (and an uneven last group on each thread).
      ("batched 3x3 pad 1", [5, 2, 4, 4], [3, 2, 3, 3], Conv2dOptions(padding: 1), true),
      ("batched stride 2", [5, 2, 6, 6], [3, 2, 3, 3], Conv2dOptions(stride: 2, padding: 1), false),
      // Winograd F(2×2, 3×3): odd sizes (tiles reaching past the image), several images
      // per GEMM, a 1×1 image, a rectangle.
      ("winograd 5x5", [2, 3, 5, 5], [4, 3, 3, 3], Conv2dOptions(padding: 1, algorithm: .winograd), true),
      ("winograd batched", [5, 2, 4, 4], [3, 2, 3, 3], Conv2dOptions(padding: 1, algorithm: .winograd), false),
      ("winograd 1x1 image", [3, 2, 1, 1], [2, 2, 3, 3], Conv2dOptions(padding: 1, algorithm: .winograd), true),
      ("winograd 6x7", [1, 2, 6, 7], [2, 2, 3, 3], Conv2dOptions(padding: 1, algorithm: .winograd), false),
    ]
    for (name, xs, ws, opt, hasBias) in cases {
      var inputs = [r.uniform(xs), r.uniform(ws)]
      if hasBias { inputs.append(r.uniform([ws[0]])) }
      try gc.check("conv2d \(name)", inputs) {
        try conv2d($0[0], weight: $0[1], bias: hasBias ? $0[2] : nil, options: opt)
      }
    }
  }

  func testPooling() throws {
    var r = Inputs(seed: 9)
    try gc.check("max pool", [r.distinct([2, 2, 5, 5])]) { try $0[0].maxPool2d(kernel: 3, stride: 2, padding: 1) }
    try gc.check("avg pool", [r.uniform([2, 2, 5, 5])]) { try $0[0].avgPool2d(kernel: 2, stride: 2) }
    try gc.check("avg pool padded", [r.uniform([1, 2, 5, 5])]) { try $0[0].avgPool2d(kernel: 3, stride: 2, padding: 1) }
    try gc.check("adaptive avg pool", [r.uniform([2, 2, 5, 7])]) { try $0[0].adaptiveAvgPool2d((3, 2)) }
  }

  func testNormalization() throws {
    var r = Inputs(seed: 10)
    try gc.check("batch norm train", [r.uniform([4, 3, 2, 2]), r.uniform([3], 0.5, 1.5), r.uniform([3])]) {
      try batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true)
    }
    try gc.check("batch norm 2-D no affine", [r.uniform([6, 4])]) {
      try batchNorm($0[0], weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
    }
    let rm = r.uniform([3]), rv = r.uniform([3], 0.5, 2)
    try gc.check("batch norm eval", [r.uniform([2, 3, 2, 2]), r.uniform([3]), r.uniform([3])]) {
      try batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: false)
    }
    try gc.check("batch norm + residual + relu", [r.awayFromZero([4, 3, 2, 2]), r.uniform([3], 0.5, 1.5), r.uniform([3]), r.awayFromZero([4, 3, 2, 2])]) {
      try batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true, residual: $0[3], relu: true)
    }
    try gc.check("batch norm + relu", [r.awayFromZero([4, 3, 2, 2]), r.uniform([3], 0.5, 1.5), r.uniform([3])]) {
      try batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true, relu: true)
    }
    try gc.check("batch norm + residual", [r.uniform([4, 3, 2, 2]), r.uniform([3], 0.5, 1.5), r.uniform([3]), r.uniform([4, 3, 2, 2])]) {
      try batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true, residual: $0[3])
    }
    try gc.check("layer norm", [r.uniform([3, 2, 8]), r.uniform([8], 0.5, 1.5), r.uniform([8])]) {
      try layerNorm($0[0], weight: $0[1], bias: $0[2])
    }
    try gc.check("layer norm no affine", [r.uniform([4, 40])]) { try layerNorm($0[0], weight: nil, bias: nil) }
  }

  func testSoftmaxAndLosses() throws {
    var r = Inputs(seed: 11)
    try gc.check("softmax", [r.uniform([3, 7], -2, 2)]) { try $0[0].softmax() }
    try gc.check("softmax middle axis", [r.uniform([2, 5, 3], -2, 2)]) { try $0[0].softmax(axis: 1) }
    try gc.check("log softmax", [r.uniform([3, 40], -2, 2)]) { try $0[0].logSoftmax() }
    try gc.check("log softmax axis 0", [r.uniform([4, 3], -2, 2)]) { try $0[0].logSoftmax(axis: 0) }
    try gc.check("cross entropy", [r.uniform([4, 5], -2, 2)]) { try crossEntropy($0[0], targets: [0, 3, 4, 1]) }
    try gc.check("cross entropy smoothing + ignore", [r.uniform([4, 5], -2, 2)]) {
      try crossEntropy($0[0], targets: [2, -100, 4, 0], labelSmoothing: 0.1, ignoreIndex: -100)
    }
    try gc.check("mse", [r.uniform([3, 4]), r.uniform([3, 4])]) { try mseLoss($0[0], $0[1]) }
    try gc.check("l2 normalize", [r.uniform([3, 6])]) { try $0[0].l2Normalized() }
  }

  func testAttention() throws {
    var r = Inputs(seed: 12)
    try gc.check("attention", [r.uniform([2, 2, 5, 4]), r.uniform([2, 2, 6, 4]), r.uniform([2, 2, 6, 4])]) {
      try scaledDotProductAttention($0[0], $0[1], $0[2])
    }
    try gc.check("packed self-attention", [r.uniform([2, 5, 3 * 2 * 4])]) { try packedSelfAttention($0[0], heads: 2) }
  }

  /// A composite: a tiny two-layer network, to exercise accumulation through a graph.
  func testSmallNetwork() throws {
    var r = Inputs(seed: 13)
    try gc.check("mlp", [r.uniform([4, 6]), r.uniform([8, 6]), r.uniform([8]), r.uniform([3, 8])]) { p in
      let h = try layerNorm(linear(p[0], weight: p[1], bias: p[2]), weight: nil, bias: nil).gelu()
      return try crossEntropy(linear(h, weight: p[3]), targets: [0, 2, 1, 1])
    }
  }
}
