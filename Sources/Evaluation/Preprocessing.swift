import Autograd
import Backbones
import Foundation
import Vision

/// Why an evaluation could not run. `description` reads "`subject`: `reason`", where the
/// subject is the file, folder or option at fault and the reason says what to do.
public struct EvaluationError: Error, CustomStringConvertible, LocalizedError, Sendable {
  public let subject: String
  public let reason: String
  public init(_ subject: String, _ reason: String) {
    self.subject = subject
    self.reason = reason
  }
  public var description: String { "\(subject): \(reason)" }
  public var errorDescription: String? { description }
}

/// How images become backbone inputs for evaluation: no augmentation, only what makes a
/// decoded image fit the backbone — channel conversion, resize of the shorter side to
/// the input size, a centre crop of the input size, then the pixel normalization the
/// backbone was trained with (the evaluation transform of MAE and DINO, with the resize
/// ratio 1 that suits images already near the input size, like Fashion-MNIST's 28 px for
/// a 32 px backbone).
public struct Preprocessing: Codable, Sendable, Equatable {
  /// Output side length (the backbone's `imageSize`).
  public var size: Int
  /// Output channels (the backbone's `inChannels`).
  public var channels: Int
  /// Per-channel normalization, already expanded to `channels` values.
  public var mean: [Float]
  public var std: [Float]
  /// Where the normalization came from: "weights file" or "default (mean 0.5, std 0.5)".
  public var normalizationSource: String

  enum CodingKeys: String, CodingKey {
    case size, channels, mean, std, normalizationSource = "normalization_source"
  }

  public init(size: Int, channels: Int, normalization: InputNormalization, source: String) throws {
    func expand(_ v: [Float], _ what: String) throws -> [Float] {
      if v.count == 1 { return [Float](repeating: v[0], count: channels) }
      guard v.count == channels else {
        throw EvaluationError(
          "input normalization",
          "has \(v.count) \(what) values for a \(channels)-channel backbone (needs 1 or \(channels))")
      }
      return v
    }
    self.size = size
    self.channels = channels
    self.mean = try expand(normalization.mean, "mean")
    self.std = try expand(normalization.std, "std")
    self.normalizationSource = source
    _ = try transform()
  }

  /// The preprocessing a backbone expects: its input size and channels, and the
  /// normalization stored in its weights file (Pretext's default when there is none).
  public init(config: BackboneConfig, stored: InputNormalization?) throws {
    try self.init(
      size: config.imageSize, channels: config.inChannels, normalization: stored ?? .standard,
      source: stored == nil ? "default (mean 0.5, std 0.5)" : "weights file")
  }

  /// One line for tables and cache keys, e.g. "gray→resize 32 (bilinear, antialias; …)→center crop 32→normalize …".
  public var summary: String {
    let m = mean.map { String(format: "%g", $0) }.joined(separator: ",")
    let s = std.map { String(format: "%g", $0) }.joined(separator: ",")
    return
      "\(channels == 1 ? "gray" : "rgb")→resize \(size) (bilinear, antialias; larger images reduced while decoded)"
      + "→center crop \(size)→normalize mean \(m) std \(s)"
  }

  func transform() throws -> Compose {
    Compose(
      try ConvertChannels(to: channels), try Resize(shorterSide: size), try CenterCrop(size: size),
      try Normalize(mean: mean, std: std))
  }

  /// How to open a folder for these inputs: images are reduced to the input size while
  /// decoding (a 4000×3000 photo costs its DCT-scaled decode, not a float resize of 12
  /// million pixels); the resize below then has little or nothing left to do.
  public var folderOptions: ImageFolderOptions {
    ImageFolderOptions(decode: ImageDecodeOptions(shorterSide: size))
  }

  /// Values per image: channels · size · size.
  public var pixelCount: Int { channels * size * size }

  /// Decodes and prepares images `indices` of `source`: [indices.count, C, S, S].
  public func images(of source: some ImageSource, indices: [Int]) throws -> Tensor {
    try ImageLoading.load(source, indices: indices, preprocessing: self)
  }
}

enum ImageLoading {
  /// Decodes and preprocesses images `indices` of `source` into [indices.count, C, S, S]
  /// (row `i` is image `indices[i]`), on all of Pretext's threads.
  ///
  /// - Throws: the first `VisionError` (naming the file) if an image cannot be decoded.
  static func load(_ source: some ImageSource, indices: [Int], preprocessing: Preprocessing) throws -> Tensor {
    // The evaluation transforms draw nothing: every image gets seed 0.
    try load(source, indices: indices, preprocessing: preprocessing, transform: preprocessing.transform(), seeds: nil)
  }

  /// Like `load`, with `transform` in place of the evaluation one (it must produce
  /// `preprocessing`'s channels and size); image `i` draws from a generator seeded with
  /// `seeds[i]`, so an augmented batch is the same at any thread count.
  static func load(
    _ source: some ImageSource, indices: [Int], preprocessing: Preprocessing, transform: some ImageTransform,
    seeds: [UInt64]?
  ) throws -> Tensor {
    let per = preprocessing.pixelCount
    let out = Tensor.zeros([indices.count, preprocessing.channels, preprocessing.size, preprocessing.size])
    let dst = out.data
    let failure = FirstError()
    Parallel.forChunks(indices.count, minChunk: 8) { range in
      for i in range {
        if failure.error != nil { return }
        do {
          var rng = RandomGenerator(seed: seeds?[i] ?? 0)
          let image = try source.loadImage(at: indices[i])
          let x = transform(FloatImage(image), using: &rng)
          x.pixels.withUnsafeBufferPointer { (dst + i * per).update(from: $0.baseAddress!, count: per) }
        } catch {
          failure.record(error)
          return
        }
      }
    }
    if let error = failure.error { throw error }
    return out
  }
}
