import Autograd
import Backbones
import XCTest

/// The memory check's formulas (Sources/Backbones/Footprint.swift) against built models.
final class FootprintTests: XCTestCase {
  /// The parameter count from the configuration is the built model's, exactly, for every
  /// preset's architecture (each narrowed to width 48, which only scales the counts;
  /// built at full width they take seconds) at two sizes and input channel counts, and
  /// for the shipped experiments' backbones at their own widths.
  func testParameterCountFromTheConfigIsTheBuiltCount() throws {
    var rng = RandomGenerator(seed: 1)
    var configs: [BackboneConfig] = []
    for name in BackbonePreset.names {
      let isViT = name.hasPrefix("vit")
      configs.append(try BackbonePreset.config(name, imageSize: 32, patchSize: isViT ? 8 : nil, width: 48))
      configs.append(
        try BackbonePreset.config(name, imageSize: 64, patchSize: isViT ? 16 : nil, inChannels: 1, width: 48))
    }
    configs.append(try BackbonePreset.config("vit-cpu", imageSize: 32, patchSize: 4, inChannels: 1))
    configs.append(try BackbonePreset.config("resnet18-small", imageSize: 42, inChannels: 1, width: 32))
    configs.append(
      .vit(ViTConfig(imageSize: 16, patchSize: 4, width: 24, depth: 2, heads: 2, fixedPositionEmbedding: true)))
    for config in configs {
      let built = try config.make(using: &rng).parameterCount
      XCTAssertEqual(config.parameterCountFromConfig, Double(built), "\(config)")
    }
  }

  /// The activation floor is a lower bound: its convolution outputs are those a forward
  /// pass makes (their shapes checked against the built ResNet's own outputs), and it
  /// grows with the square of the side.
  func testTheActivationFloorCountsTheConvolutionOutputs() throws {
    let config = try BackbonePreset.config("resnet18-small", imageSize: 28, inChannels: 1, width: 8)
    // Stem 8×28², stage 1: 4 convs 8×28², stage 2: 4 convs 16×14² + downsample, 3: 32×7²,
    // 4: 64×4² (each stage's first block strides 2 and has a downsample).
    let stages: [Double] = [8 * 784, 4 * 8 * 784, 5 * 16 * 196, 5 * 32 * 49, 5 * 64 * 16]
    let convs = stages.reduce(0, +)
    XCTAssertEqual(config.activationFloatsFloor(inputSize: 28), 784 + convs)
    let vit = try BackbonePreset.config("vit-cpu", imageSize: 32, patchSize: 4, inChannels: 1)
    XCTAssertEqual(vit.activationFloatsFloor(inputSize: 32), 1024 + 64 * 192)
    XCTAssertEqual(
      vit.activationFloatsFloor(inputSize: 64) / vit.activationFloatsFloor(inputSize: 32), 4, accuracy: 1e-12)
  }

  /// Sizes from settings not yet range-checked (Int.max, negatives) give a finite floor,
  /// enormous for huge sizes, instead of trapping on integer overflow.
  func testUncheckedSizesNeverOverflow() throws {
    for name in ["resnet18", "resnet18-small", "resnet50", "vit-cpu"] {
      let config = try BackbonePreset.config(name)
      let huge = config.activationFloatsFloor(inputSize: Int.max)
      XCTAssertTrue(huge.isFinite && huge > 1e12, "\(name): \(huge)")
      XCTAssertEqual(config.activationFloatsFloor(inputSize: -5), config.activationFloatsFloor(inputSize: 0), "\(name)")
    }
  }
}
