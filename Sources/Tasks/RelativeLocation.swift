import Autograd
import Backbones
import NN
import Support
import Vision

/// Relative patch location (Doersch, Gupta & Efros 2015, "Unsupervised Visual
/// Representation Learning by Context Prediction", https://arxiv.org/abs/1505.05192).
///
/// From a 3×3 grid of patches (with gaps and random jitter, so that edges and textures
/// continuing across patch borders cannot give the answer away) the centre patch and one
/// of its 8 neighbours are encoded by the same backbone; a head on the concatenated
/// features predicts which neighbour it was. Each patch is independently grayscaled with
/// some probability (the paper's guard against chromatic-aberration shortcuts).
public final class RelativeLocation: RegisteredTask, @unchecked Sendable {
  public struct Settings: TaskSettings, Equatable {
    /// The image is first resized to this size (pixels, square); 0 keeps it.
    public var resize: Int = 64
    public var patchSize: Int = 18
    public var gap: Int = 4
    public var jitter: Int = 2
    /// The size (pixels, square) patches are resized to before the backbone sees them;
    /// 0: the backbone's image size. A convolutional backbone also takes patches at their
    /// own size (`patch_input_size` = `patch_size`): the features then see objects at
    /// the scale the probe will show them, and each patch costs a fraction of the FLOPs.
    public var patchInputSize: Int = 0
    public var grayscaleProbability: Float = 0.33
    public var headHidden: Int = 512
    public var mean: [Float] = [0.5]
    public var std: [Float] = [0.5]
    public init() {}

    public static let section = "relative-location"
    // Sides in pixels, up to a 16k-px image: the memory check bounds what a run can hold.
    public static let options: [SettingOption<Settings>] = [
      .integer("resize", \.resize, in: 0...16384, "side the image is first resized to (square); 0 keeps it"),
      .integer("patch_size", \.patchSize, in: 1...16384, "side of each grid patch"),
      .integer("gap", \.gap, in: 0...16384, "pixels between neighbouring patches (§3: no shortcut across borders)"),
      .integer("jitter", \.jitter, in: 0...16384, "random shift of each patch, at most this many pixels"),
      SettingOption(
        "patch_input_size", \.patchInputSize, accepts: "0, or 8…16384",
        "side patches are resized to for the backbone; 0: the backbone's image size"
      ) { $0 == 0 || (8...16384).contains($0) ? nil : "must be 0 (the backbone's image size) or in [8, 16384], got \($0)" },
      .number("grayscale_p", \.grayscaleProbability, in: 0...1, "probability each patch is grayscaled (§3: against chromatic aberration)"),
      .width("head_hidden", \.headHidden, "hidden width of the head on [centre, neighbour] features"),
      .inputMean(\.mean), .inputStd(\.std),
    ]
  }

  public let settings: Settings
  public let heads: Module
  public var inputNormalization: InputNormalization { InputNormalization(mean: settings.mean, std: settings.std) }
  let head: MLPHead
  let sampler: PatchGridSampler
  let resize: Resize?
  let patchResize: Resize
  let grayscale: RandomGrayscale
  let input: InputPreparation

  /// Two patches, at `patch_input_size` (or the backbone's size).
  public static func backboneInputs(_ settings: Settings, backbone: BackboneConfig) -> [Int] {
    let size = settings.patchInputSize > 0 ? settings.patchInputSize : backbone.imageSize
    return [size, size]
  }

  public init(_ settings: Settings, backbone: any Backbone, using rng: inout RandomGenerator) throws {
    try settings.validate()
    self.settings = settings
    sampler = try PatchGridSampler(patchSize: settings.patchSize, gap: settings.gap, jitter: settings.jitter)
    if settings.resize > 0 {
      guard settings.resize >= sampler.minimumImageSize else {
        throw TaskError(
          "relative-location: resize \(settings.resize) is smaller than the patch grid (\(sampler.minimumImageSize) px with patch_size \(settings.patchSize), gap \(settings.gap), jitter \(settings.jitter))")
      }
      resize = try Resize(height: settings.resize, width: settings.resize)
    } else {
      resize = nil
    }
    let size = settings.patchInputSize > 0 ? settings.patchInputSize : backbone.config.imageSize
    guard size == backbone.config.imageSize || backbone.config.acceptsAnyImageSize else {
      throw TaskError(
        "relative-location: patch_input_size \(size) differs from the backbone's image size \(backbone.config.imageSize), and this backbone (a ViT, with one position embedding per patch of its image) only takes that size; set patch_input_size: 0")
    }
    patchResize = try Resize(height: size, width: size)
    grayscale = try RandomGrayscale(p: settings.grayscaleProbability)
    input = try InputPreparation(channels: backbone.config.inChannels, mean: settings.mean, std: settings.std)
    // Head on [center, neighbour] features: fc → BN → ReLU → fc → 8.
    head = MLPHead(input: 2 * backbone.featureCount, hidden: settings.headHidden, output: 8, using: &rng)
    heads = Module()
    head.register(in: heads)
  }

  public func sample(_ image: Image, using rng: inout RandomGenerator) throws -> TaskSample {
    var x = input.float(image, using: &rng)
    if let resize { x = resize(x, using: &rng) }
    let pair = try sampler(x, using: &rng)
    let prepare = { (patch: FloatImage, rng: inout RandomGenerator) -> FloatImage in
      self.input.normalize(self.patchResize(self.grayscale(patch, using: &rng), using: &rng), using: &rng)
    }
    let center = prepare(pair.center, &rng)
    let neighbor = prepare(pair.neighbor, &rng)
    return TaskSample(views: [center, neighbor], labels: [pair.label])
  }

  public func loss(_ batch: TaskBatch, backbone: any Backbone) throws -> TaskOutput {
    let n = batch.count
    let features = try backbone.features(Tensor.concat(batch.views, axis: 0))  // [2N, F]
    let pair = try Tensor.concat([features.sliced(axis: 0, 0..<n), features.sliced(axis: 0, n..<(2 * n))], axis: 1)
    let logits = try head(pair)
    let loss = try crossEntropy(logits, targets: batch.labels)
    let predicted = try logits.argmax(axis: 1).values
    let accuracy = Double(zip(predicted, batch.labels).filter { $0 == $1 }.count) / Double(n)
    return TaskOutput(loss: loss, metrics: [("location_accuracy", accuracy)])
  }
}
