import Autograd
import Backbones
import Foundation
import NN
import Support
import Vision

/// `pretext embed`: the features of every image (PNG or JPEG) under a folder (labeled or not), for use
/// outside Pretext.
public enum Embedding {
  public struct Options: Sendable {
    public var weights: String
    public var architecture: BackboneConfig?
    public var folder: String
    /// The safetensors file to write; the CSV goes next to it (see `csvPath(for:)`).
    public var output: String
    /// A depth name, or nil for the final features.
    public var layer: String?
    public var batchSize = 256
    public init(weights: String, folder: String, output: String) {
      self.weights = weights
      self.folder = folder
      self.output = output
    }
  }

  public struct Summary: Codable, Sendable {
    public var images: Int
    public var dimension: Int
    public var layer: String
    public var features: String
    public var csv: String
    public var weightsSHA256: String
    public var seconds: Double
    enum CodingKeys: String, CodingKey {
      case images, dimension, layer, features, csv, weightsSHA256 = "weights_sha256", seconds
    }
  }

  /// The CSV of an output file: `out.safetensors` → `out.csv` (other names: `+ ".csv"`).
  public static func csvPath(for output: String) -> String {
    output.hasSuffix(".safetensors") ? String(output.dropLast(".safetensors".count)) + ".csv" : output + ".csv"
  }

  /// Writes `features` [N, F] (row i = the i-th file in byte-wise path order) with the
  /// weights hash, depth, folder and preprocessing in the metadata, and a CSV of
  /// `index,path` (paths relative to the folder).
  public static func run(_ options: Options, progress: (String) -> Void = { _ in }) throws -> Summary {
    let clock = Stopwatch()
    let loaded = try LoadedBackbone(path: options.weights, architecture: options.architecture)
    let preprocessing = try Preprocessing(config: loaded.backbone.config, stored: loaded.normalization)
    let folder = try ImageFolder(path: options.folder, options: preprocessing.folderOptions)
    let names = try DepthChoice.depthNames(of: loaded.backbone)
    let layer = options.layer ?? names.last!
    guard names.contains(layer) else {
      throw EvaluationError(
        "--layer \(layer)",
        "\(loaded.backbone.config.name) has no such depth; choose one of: \(names.joined(separator: ", "))")
    }
    guard options.batchSize >= 1 else { throw EvaluationError("--batch-size", "must be at least 1") }
    progress("embedding \(folder.count) images of \(folder.root) at \(layer) (\(preprocessing.summary))")
    // Decoded and extracted in slices, so a large folder never sits in memory as pixels.
    let slice = 4096
    var parts: [Tensor] = []
    var start = 0
    while start < folder.count {
      let end = min(folder.count, start + slice)
      let images = try ImageLoading.load(folder, indices: Array(start..<end), preprocessing: preprocessing)
      let depths = try FeatureExtractor.extract(loaded.backbone, images: images, batchSize: options.batchSize)
      parts.append(depths.first { $0.name == layer }!.values)
      start = end
      progress("  \(end)/\(folder.count) images")
    }
    let features = try Tensor.concat(parts, axis: 0)
    let metadata = [
      "pretext.embed.weights": options.weights, "pretext.embed.weights_sha256": loaded.sha256,
      "pretext.embed.layer": layer, "pretext.embed.folder": folder.root,
      "pretext.embed.preprocessing": preprocessing.summary,
      "pretext.embed.csv": (csvPath(for: options.output) as NSString).lastPathComponent,
    ]
    let outFolder = (options.output as NSString).deletingLastPathComponent
    if !outFolder.isEmpty {
      do {
        try FileManager.default.createDirectory(atPath: outFolder, withIntermediateDirectories: true)
      } catch {
        throw EvaluationError(outFolder, "cannot create the output folder (\(error.localizedDescription))")
      }
    }
    try SafeTensors(tensors: [("features", features)], metadata: metadata).write(to: options.output)
    var csv = "index,path\n"
    for (i, f) in folder.files.enumerated() { csv += "\(i),\(csvField(f))\n" }
    try writeAtomically(Array(csv.utf8), to: csvPath(for: options.output))
    return Summary(
      images: folder.count, dimension: features.shape[1], layer: layer, features: options.output,
      csv: csvPath(for: options.output), weightsSHA256: loaded.sha256, seconds: clock.seconds)
  }
}
