import Autograd
import Backbones
import Foundation
import NN
import Support
import Vision

/// The `eval:` section of an experiment: what is measured while pretraining runs.
public struct OnlineEvaluationSettings: SettingsSchema, Equatable {
  /// A labeled folder (one subfolder per class) for the online linear probe; empty: none.
  public var onlineProbe = ""
  /// Training images per class the online head learns from.
  public var labelsPerClass = 100
  /// Images per class held out to test it (disjoint from the training ones).
  public var heldOutPerClass = 50
  /// Labeled images per step for the head.
  public var batchSize = 64
  /// Steps between evaluations (and at the last step); 0 turns the section off.
  public var every = 100
  /// The online head's peak learning rate (it follows the run's schedule); 0: 1e-2 under
  /// AdamW, 0.1 under SGD or LARS (solo-learn's classifier rate).
  public var learningRate = 0.0
  /// Unlabeled images the label-free signals (RankMe, feature spread) are measured on.
  public var signalImages = 512
  public var seed: UInt64 = 0
  public init() {}

  public static let section = "eval"
  public static let options: [SettingOption<OnlineEvaluationSettings>] = [
    .value(
      "online_probe", \.onlineProbe, accepts: "a labeled folder (a subfolder per class)",
      "train a linear head on detached features during pretraining and log its held-out accuracy"),
    .integer("labels_per_class", \.labelsPerClass, in: 1...1_000_000, "labeled images per class the online head trains on"),
    .integer("held_out_per_class", \.heldOutPerClass, in: 1...1_000_000, "labeled images per class it is tested on"),
    .integer("batch_size", \.batchSize, in: 1...65_536, "labeled images per step for the online head"),
    .number(
      "lr", \.learningRate, in: 0...100,
      "the online head's peak learning rate (0: 1e-2 under adamw, 0.1 under sgd or lars)"),
    .integer("every", \.every, in: 0...1_000_000_000, "steps between evaluations (and the last step); 0: off"),
    .integer("signal_images", \.signalImages, in: 2...65_536, "unlabeled images RankMe and the feature spread use"),
    .integer("seed", \.seed, in: 0...UInt64(UInt32.max), "which labeled and unlabeled images are drawn"),
  ]

  /// Whether the section asks for anything.
  public var isActive: Bool { every > 0 }
}

/// Evaluation during pretraining (registered with the trainer as its `TrainingMonitor`):
///
/// - **The online linear probe** (solo-learn's online classifier; the linear probe of
///   Chen et al. 2020 run while training): a BatchNorm without affine parameters (as
///   MAE's linear probe, He et al. 2021 §A.2, so that the head's step size does not
///   depend on the features' scale) and a linear layer on the backbone's final features.
///   Each step it trains on `batch_size` labeled images whose features the backbone
///   makes in evaluation mode without recording, so no gradient reaches the backbone and
///   its BatchNorm statistics are not touched. Every `every` steps it is tested on the
///   held-out images: `online_probe_top1`.
/// - **Label-free signals**, on a fixed sample of the unlabeled images: RankMe (Garrido et
///   al. 2023), the effective rank of the feature matrix, exp of the entropy of its
///   normalized singular values (`rankme`; at most min(images, width)), and the mean
///   per-dimension standard deviation of the L2-normalized features (Chen & He 2021 §4.1,
///   SimSiam's collapse monitor) times √width (`feature_spread`: about 1 for features
///   spread over the sphere, 0 when every image maps to one point).
///
/// The images are decoded and preprocessed once (the task's input normalization, the
/// probe's resize and centre crop), so a step costs one forward pass of `batch_size`
/// images. The labeled draw of a step depends on the seed and the step alone, so a
/// resumed run sees the same batches.
public final class OnlineEvaluation: @unchecked Sendable {
  public let settings: OnlineEvaluationSettings
  public let module = Module()
  public var every: Int { settings.every }
  /// Training pool, held-out set and unlabeled sample: [N, C, S, S], preprocessed.
  let pool: Tensor?
  let poolLabels: [Int]
  let heldOut: Tensor?
  let heldOutLabels: [Int]
  let signal: Tensor
  let norm: BatchNorm?
  let head: Linear?
  /// The class names of the labeled folder.
  public let classes: [String]

  /// The collapse alarm: the features are said to be collapsing when their spread falls
  /// below `collapseShare` of the highest spread this session has measured, or below
  /// `collapseFloor` (a hundredth of the spread of features that fill the sphere).
  /// Relative, because features can start with little spread and be fine: an MAE ViT's
  /// pooled features, dominated by their mean, measured 0.07 after 100 steps on
  /// Fashion-MNIST while its reconstructions improved.
  public static let collapseShare = 0.1
  public static let collapseFloor = 0.01
  /// The highest spread measured in this session (not checkpointed: a resumed run's
  /// alarm compares with what it measures itself).
  private(set) var highestSpread = 0.0

  /// - Parameters:
  ///   - unlabeled: the pretraining images (the signals' sample is drawn from them).
  ///   - featureCount: the width of the backbone's final features.
  ///   - normalization: the task's input normalization.
  /// - Throws: `EvaluationError` naming the `eval.*` key at fault (a class with too few
  ///   images, a folder with one class); the folder's own errors.
  public init(
    _ settings: OnlineEvaluationSettings, unlabeled: any ImageSource, backbone: BackboneConfig, featureCount: Int,
    normalization: InputNormalization, using rng: inout RandomGenerator, progress: (String) -> Void = { _ in }
  ) throws {
    self.settings = settings
    let preprocessing = try Preprocessing(
      size: backbone.imageSize, channels: backbone.inChannels, normalization: normalization, source: "task")
    signal = try Self.readableSample(
      unlabeled, count: settings.signalImages, seed: settings.seed, preprocessing: preprocessing)
    guard signal.shape[0] >= 2 else {
      throw EvaluationError(
        "eval.signal_images", "needs at least 2 readable unlabeled images, the folder has \(signal.shape[0])")
    }
    var bytes = signal.count * 4
    if settings.onlineProbe.isEmpty {
      (pool, poolLabels, heldOut, heldOutLabels, norm, head, classes) = (nil, [], nil, [], nil, nil, [])
    } else {
      let folder: LabeledImageFolder
      do {
        folder = try LabeledImageFolder(path: settings.onlineProbe, options: preprocessing.folderOptions)
      } catch let e as VisionError {
        throw EvaluationError("eval.online_probe", "\(e)")
      }
      guard folder.classes.count >= 2 else {
        throw EvaluationError(
          "eval.online_probe", "\(folder.root) has \(folder.classes.count) class folder(s); a probe needs at least 2")
      }
      let byClass = LabelSubset.indicesByClass(folder.labels, classes: folder.classes.count)
      let need = settings.heldOutPerClass + settings.labelsPerClass
      if let short = byClass.indices.first(where: { byClass[$0].count < need }) {
        throw EvaluationError(
          "eval.labels_per_class",
          "class \"\(folder.classes[short])\" of \(folder.root) has \(byClass[short].count) images, fewer than "
            + "eval.labels_per_class + eval.held_out_per_class = \(need); lower them")
      }
      // Per class, one seeded permutation: the first images are held out, the next train.
      var order = RandomGenerator(seed: settings.seed &+ 1)
      var train: [Int] = []
      var test: [Int] = []
      for members in byClass {
        let picked = order.permutation(members.count).prefix(need).map { members[$0] }
        test += picked.prefix(settings.heldOutPerClass)
        train += picked.dropFirst(settings.heldOutPerClass)
      }
      progress(
        "online probe: \(train.count) training and \(test.count) held-out images of \(folder.classes.count) classes "
          + "from \(folder.root); signals on \(signal.shape[0]) unlabeled images")
      do {
        pool = try preprocessing.images(of: folder, indices: train)
        heldOut = try preprocessing.images(of: folder, indices: test)
      } catch let e as VisionError {
        throw EvaluationError("eval.online_probe", "\(e)")
      }
      poolLabels = train.map { folder.labels[$0] }
      heldOutLabels = test.map { folder.labels[$0] }
      bytes += (pool!.count + heldOut!.count) * 4
      norm = module.register(child: "norm", BatchNorm(featureCount, affine: false))
      head = module.register(child: "head", Linear(featureCount, folder.classes.count, using: &rng))
      classes = folder.classes
    }
    imageBytes = bytes
  }

  public func peakLearningRate(optimizer: String) -> Double {
    settings.learningRate > 0 ? settings.learningRate : optimizer == "adamw" ? 1e-2 : 0.1
  }

  /// Up to `count` images of `source` in a seeded order, preprocessed: [n, C, S, S]. Those
  /// that do not decode are left out, as the run's loader does (a strict source stops at
  /// the first instead); each image is decoded once.
  static func readableSample(
    _ source: any ImageSource, count: Int, seed: UInt64, preprocessing: Preprocessing
  ) throws -> Tensor {
    var draw = RandomGenerator(seed: seed)
    let transform = try preprocessing.transform()
    var pixels: [Float] = []
    var kept = 0
    for i in draw.permutation(source.count) where kept < count {
      let image: Image
      do {
        image = try source.loadImage(at: i)
      } catch where !source.isStrict {
        continue
      }
      var rng = RandomGenerator(seed: 0)  // the evaluation transform draws nothing
      pixels += transform(FloatImage(image), using: &rng).pixels
      kept += 1
    }
    return try Tensor(shape: [kept, preprocessing.channels, preprocessing.size, preprocessing.size], pixels)
  }

  /// Bytes of the decoded images kept for the evaluation.
  public let imageBytes: Int

  /// The labeled rows of `step`'s batch: a draw without replacement from the pool that
  /// depends on the seed and the step only; this process's share of it.
  func batchRows(step: Int, group: any Communicator) -> [Int] {
    var rng = RandomGenerator(seed: settings.seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(step + 1))
    let n = poolLabels.count
    let b = min(settings.batchSize, n)
    var indices = Array(0..<n)
    for i in 0..<b { indices.swapAt(i, i + rng.nextInt(below: n - i)) }
    let share = (b + group.size - 1) / group.size
    let lo = min(b, group.rank * share)
    return Array(indices[lo..<min(b, lo + share)])
  }

  /// The head's cross-entropy on `step`'s labeled batch; nil without an online probe (or
  /// for a process whose share of the batch is empty).
  public func loss(step: Int, backbone: any Backbone, group: any Communicator) throws -> Tensor? {
    guard let pool, let head, let norm else { return nil }
    let chosen = batchRows(step: step, group: group)
    guard !chosen.isEmpty else { return nil }
    let features = try Self.frozenFeatures(backbone, rows(pool, chosen))
    return try crossEntropy(try head(try norm(features)), targets: chosen.map { poolLabels[$0] })
  }

  /// The held-out accuracy and the label-free signals of the backbone now, and a warning
  /// when the features are collapsing.
  public func evaluate(step: Int, backbone: any Backbone) throws -> (
    metrics: [(name: String, value: Double)], warnings: [String]
  ) {
    var metrics: [(name: String, value: Double)] = []
    if let heldOut, let head, let norm {
      let features = try Self.frozenFeatures(backbone, heldOut)
      module.eval()
      defer { module.train() }
      let scores = try withoutGradients { try head(try norm(features)) }
      metrics.append(("online_probe_top1", Accuracy.of(scores: scores, labels: heldOutLabels).top1))
    }
    let features = try Self.frozenFeatures(backbone, signal)
    let rank = Self.rankMe(features)
    let spread = Self.featureSpread(features)
    metrics += [("rankme", rank), ("feature_spread", spread)]
    var warnings: [String] = []
    highestSpread = max(highestSpread, spread)
    let limit = max(Self.collapseFloor, Self.collapseShare * highestSpread)
    if spread < limit {
      warnings.append(
        String(
          format:
            "the features may be collapsing: their spread (per-dimension std of the L2-normalized features × √%ld; "
            + "about 1 when they fill the sphere) is %.3g, below %.3g (%@), and RankMe is %.1f of %ld; lower the "
            + "learning rate, or check the task's settings (e.g. the temperature or the momentum)",
          features.shape[1], spread, limit,
          limit > Self.collapseFloor
            ? String(format: "a tenth of the %.3g measured earlier", highestSpread) : "the floor", rank,
          features.shape[1]))
    }
    return (metrics, warnings)
  }

  public func measureEvaluation(backbone: any Backbone) throws {
    _ = try Self.frozenFeatures(backbone, rows(signal, Array(0..<min(Self.chunk, signal.shape[0]))))
  }

  /// Images per forward pass of an evaluation: a small chunk keeps its activations (which
  /// the memory plan adds to a step's) a fraction of a step's.
  static let chunk = 64

  /// The backbone's final features of preprocessed images [N, C, S, S] → [N, F], in
  /// evaluation mode and without recording; the backbone's mode is restored after.
  static func frozenFeatures(_ backbone: any Backbone, _ images: Tensor) throws -> Tensor {
    let wasTraining = backbone.isTraining
    backbone.eval()
    defer { backbone.train(wasTraining) }
    let n = images.shape[0]
    let per = images.count / max(1, n)
    var parts: [Tensor] = []
    var done = 0
    while done < n {
      let b = min(chunk, n - done)
      let batch = Tensor.zeros([b] + Array(images.shape.dropFirst()))
      batch.data.update(from: images.data + done * per, count: b * per)
      parts.append(try withoutGradients { try backbone.features(batch) })
      done += b
    }
    return parts.count == 1 ? parts[0] : try Tensor.concat(parts, axis: 0)
  }

  /// RankMe (Garrido et al. 2023, eq. 1): exp(−Σ p_k log p_k) with p_k = σ_k / Σσ + ε
  /// over the singular values σ of `features` [N, F]. The σ² are the eigenvalues of the
  /// smaller Gram matrix (FᵀF or FFᵀ).
  public static func rankMe(_ features: Tensor) -> Double {
    let (n, f) = (features.shape[0], features.shape[1])
    let p = features.data
    let side = min(n, f)
    var gram = [Double](repeating: 0, count: side * side)
    for i in 0..<side {
      for j in i..<side {
        var s = 0.0
        if f <= n {
          for r in 0..<n { s += Double(p[r * f + i]) * Double(p[r * f + j]) }
        } else {
          for c in 0..<f { s += Double(p[i * f + c]) * Double(p[j * f + c]) }
        }
        gram[i * side + j] = s
        gram[j * side + i] = s
      }
    }
    let sigma = PCA.jacobiEigen(gram, n: side).values.map { max(0, $0).squareRoot() }
    let total = sigma.reduce(0, +)
    guard total > 0 else { return 0 }
    let eps = 1e-7
    let entropy = sigma.reduce(0.0) { acc, s in
      let q = s / total + eps
      return acc - q * log(q)
    }
    return exp(entropy)
  }

  /// The mean over dimensions of the standard deviation (over images) of the
  /// L2-normalized rows of `features` [N, F], times √F.
  public static func featureSpread(_ features: Tensor) -> Double {
    let (n, f) = (features.shape[0], features.shape[1])
    let p = features.data
    var sum = [Double](repeating: 0, count: f)
    var squares = [Double](repeating: 0, count: f)
    for r in 0..<n {
      var norm = 0.0
      for c in 0..<f { norm += Double(p[r * f + c]) * Double(p[r * f + c]) }
      let scale = norm > 0 ? 1 / norm.squareRoot() : 0
      for c in 0..<f {
        let v = Double(p[r * f + c]) * scale
        sum[c] += v
        squares[c] += v * v
      }
    }
    var std = 0.0
    for c in 0..<f {
      let mean = sum[c] / Double(n)
      std += max(0, squares[c] / Double(n) - mean * mean).squareRoot()
    }
    return std / Double(f) * Double(f).squareRoot()
  }
}
