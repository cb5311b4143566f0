/// What a backbone costs in memory, from its configuration alone (nothing is allocated):
/// the exact parameter count, and a lower bound on the activations one training step
/// keeps per image — so a configuration that cannot fit is refused before its first
/// tensor exists (Sources/Experiments/MemoryCheck.swift). Counts are in floats and in
/// Double, so an absurd configuration gives a large number, never an overflow.
extension BackboneConfig {
  /// Parameters of the built backbone (`Module.parameterCount`; buffers such as BatchNorm
  /// statistics or a fixed position embedding are not parameters).
  public var parameterCountFromConfig: Double {
    switch self {
    case .vit(let c): return c.parameterCountFromConfig
    case .resnet(let c): return c.parameterCountFromConfig
    }
  }

  /// Floats that one image of `inputSize`×`inputSize` pixels keeps alive at the least
  /// during a training step: the input itself, and every layer output the backward
  /// pass reads (a ResNet's convolution outputs, which BatchNorm's backward needs; a
  /// ViT's patch embedding — its blocks keep more, but a masked encoder sees only some
  /// tokens). The real use is several times this (measured in `Trainer.measureMemory`).
  public func activationFloatsFloor(inputSize requested: Int) -> Double {
    // Sizes come from settings not yet range-checked (a task checks its own when it is
    // built, after this floor). Beyond 2^20 px a side already needs more memory than any
    // machine has, so the floor at 2^20 refuses such a run just the same, without
    // integer overflow in the layer arithmetic.
    let inputSize = min(max(requested, 0), 1 << 20)
    switch self {
    case .vit(let c):
      let tokens = Double(inputSize / max(c.patchSize, 1)) * Double(inputSize / max(c.patchSize, 1))
      return Double(c.inChannels) * Double(inputSize) * Double(inputSize) + tokens * Double(c.width)
    case .resnet(let c):
      return Double(c.inChannels) * Double(inputSize) * Double(inputSize)
        + c.convolutionOutputFloats(inputSize: inputSize)
    }
  }
}

extension ViTConfig {
  var parameterCountFromConfig: Double {
    let w = Double(width), m = Double(Int(Double(width) * mlpRatio))
    let patchEmbedding = Double(inChannels) * Double(patchSize) * Double(patchSize) * w + w
    let tokens = fixedPositionEmbedding ? 0 : Double(patchCount + 1) * w
    // Two LayerNorms, qkv and output projections (with biases), the MLP's two layers.
    let block = 4 * w + (3 * w * w + 3 * w) + (w * w + w) + (w * m + m) + (m * w + w)
    return patchEmbedding + w + tokens + Double(depth) * block + 2 * w
  }
}

extension ResNetConfig {
  /// (output channels, output side) of every convolution, in order.
  func convolutions(inputSize: Int) -> [(channels: Int, side: Int, weights: Double)] {
    func out(_ side: Int, kernel: Int, stride: Int, padding: Int) -> Int {
      max(0, (side + 2 * padding - kernel) / stride + 1)
    }
    var list: [(Int, Int, Double)] = []
    var side: Int
    if stem == .imagenet {
      side = out(inputSize, kernel: 7, stride: 2, padding: 3)
      list.append((width, side, Double(inChannels * width) * 49))
      side = out(side, kernel: 3, stride: 2, padding: 1)  // max pool
    } else {
      side = inputSize
      list.append((width, side, Double(inChannels * width) * 9))
    }
    var inC = width
    for (i, count) in layers.enumerated() {
      let planes = width << i
      for j in 0..<count {
        let stride = j == 0 && i > 0 ? 2 : 1
        let strided = out(side, kernel: 3, stride: stride, padding: 1)
        let outC = planes * expansion
        switch block {
        case .basic:
          list.append((planes, strided, Double(inC * planes) * 9))
          list.append((planes, strided, Double(planes * planes) * 9))
        case .bottleneck:
          list.append((planes, side, Double(inC * planes)))
          list.append((planes, strided, Double(planes * planes) * 9))
          list.append((outC, strided, Double(planes * outC)))
        }
        if stride != 1 || inC != outC { list.append((outC, strided, Double(inC * outC))) }
        side = strided
        inC = outC
      }
    }
    return list
  }

  func convolutionOutputFloats(inputSize: Int) -> Double {
    convolutions(inputSize: inputSize).reduce(0) { $0 + Double($1.channels) * Double($1.side) * Double($1.side) }
  }

  var parameterCountFromConfig: Double {
    // Every convolution is followed by a BatchNorm with a weight and a bias per channel.
    convolutions(inputSize: imageSize).reduce(0) { $0 + $1.weights + 2 * Double($1.channels) }
  }
}
