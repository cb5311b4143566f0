import Autograd
import Backbones
import NN
import Support
import Vision

/// Rotation prediction (Gidaris, Singh & Komodakis 2018, "Unsupervised Representation
/// Learning by Predicting Image Rotations", https://arxiv.org/abs/1803.07728).
///
/// The backbone sees an image turned by 0°, 90°, 180° or 270° and a linear head on its
/// features names the turn. Quarter turns move pixels exactly, so no resampling artefact
/// gives the answer away, and telling them apart needs the objects' shape and pose
/// (§2.2). As in the paper's training (§3), each image comes with all four turns in the
/// same batch, after a light augmentation (random crop, horizontal flip) shared by the four.
public final class Rotation: RegisteredTask, @unchecked Sendable {
  public struct Settings: TaskSettings, Equatable {
    /// A mild crop keeps the object whole, so that its turn can still be seen.
    public var cropScale: [Double] = [0.6, 1]
    public var flip: Float = 0.5
    public var allRotations = true
    public var mean: [Float] = [0.5]
    public var std: [Float] = [0.5]
    public init() {}

    public static let section = "rotation"
    public static let options: [SettingOption<Settings>] = [
      .cropScale(\.cropScale), .flip(\.flip),
      .flag("all_rotations", \.allRotations, "all four turns of each image (§3), or one at random (¼ the cost)"),
      .inputMean(\.mean), .inputStd(\.std),
    ]
  }

  public let settings: Settings
  public let heads = Module()
  public var inputNormalization: InputNormalization { InputNormalization(mean: settings.mean, std: settings.std) }
  let classifier: Linear
  let augment: Compose
  let input: InputPreparation

  /// One view per turn, at the backbone's size.
  public static func backboneInputs(_ settings: Settings, backbone: BackboneConfig) -> [Int] {
    Array(repeating: backbone.imageSize, count: settings.allRotations ? 4 : 1)
  }

  public init(_ settings: Settings, backbone: any Backbone, using rng: inout RandomGenerator) throws {
    try settings.validate()
    self.settings = settings
    input = try InputPreparation(channels: backbone.config.inChannels, mean: settings.mean, std: settings.std)
    augment = Compose([
      try RandomResizedCrop(size: backbone.config.imageSize, scale: settings.cropScale[0]...settings.cropScale[1]),
      try RandomHorizontalFlip(p: settings.flip), input.normalize,
    ])
    // Linear on the pooled features [B, F] → [B, 4]: the features alone must tell the turn.
    classifier = Linear(backbone.featureCount, 4, using: &rng)
    heads.register(child: "classifier", classifier)
  }

  /// Views: the augmented image turned by k · 90° counter-clockwise, labels: the k's.
  public func sample(_ image: Image, using rng: inout RandomGenerator) throws -> TaskSample {
    let x = augment(input.float(image, using: &rng), using: &rng)
    let turns = settings.allRotations ? [0, 1, 2, 3] : [rng.nextInt(below: 4)]
    return TaskSample(views: turns.map { x.rotated(quarterTurns: $0) }, labels: turns)
  }

  public func loss(_ batch: TaskBatch, backbone: any Backbone) throws -> TaskOutput {
    // Rows are view-major ([V·B, C, H, W]: view v of sample i at v·B + i); labels are
    // sample-major ([B·V]).
    let (n, v) = (batch.count, batch.views.count)
    let targets = (0..<(v * n)).map { batch.labels[($0 % n) * v + $0 / n] }
    let logits = try classifier(backbone.features(Tensor.concat(batch.views, axis: 0)))  // [V·B, 4]
    let predicted = try logits.argmax(axis: 1).values
    let accuracy = Double(zip(predicted, targets).filter { $0 == $1 }.count) / Double(targets.count)
    return TaskOutput(loss: try crossEntropy(logits, targets: targets), metrics: [("rotation_accuracy", accuracy)])
  }
}
