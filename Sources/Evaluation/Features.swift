import Autograd
import Backbones
import Foundation
import NN
import Support
import Vision

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// What a frozen backbone makes of a set of images, and how those features are kept: the
// features at every depth (`FeatureExtractor`), the feature cache beside a run and its
// keys, and the content hashes and fingerprints those keys are made of. The probe's
// use of them, model by model, is ProbeFeatures.swift.

/// Features of one set of images at one depth: `values` [N, F], row `i` for image `i`.
public struct LayerFeatures: @unchecked Sendable {
  /// The depth's name from `Backbone.featuresByDepth` (`blocks.3`, `norm`, `layer2`),
  /// or `pixels` for the raw-pixel baseline.
  public let name: String
  public let values: Tensor
  public init(name: String, values: Tensor) {
    self.name = name
    self.values = values
  }
  public var count: Int { values.shape[0] }
  public var dimension: Int { values.shape[1] }

  /// A probe candidate's features: one depth (`layer4`), or several joined by `+`
  /// (`layer3+layer4`), concatenated along the feature axis in that order. Nil when a
  /// named depth is not among `depths`.
  public static func candidate(_ name: String, from depths: [LayerFeatures]) throws -> LayerFeatures? {
    var parts: [LayerFeatures] = []
    for part in name.split(separator: "+", omittingEmptySubsequences: false) {
      guard let layer = depths.first(where: { $0.name == part }) else { return nil }
      parts.append(layer)
    }
    if parts.count == 1 { return parts[0] }
    return LayerFeatures(name: name, values: try Tensor.concat(parts.map(\.values), axis: 1))
  }
}

/// Runs a frozen backbone over preprocessed images.
public enum FeatureExtractor {
  /// The pooled features after every block/stage of `backbone` (evaluation mode, no
  /// gradients), shallow to deep; the last is the backbone's final `features`.
  ///
  /// - Parameters:
  ///   - images: [N, C, S, S], already preprocessed (see `Preprocessing`).
  ///   - progress: called with the number of images done after each batch.
  /// - Returns: one [N, F_d] tensor per depth.
  public static func extract(
    _ backbone: any Backbone, images: Tensor, batchSize: Int = 256, progress: (Int) -> Void = { _ in }
  ) throws -> [LayerFeatures] {
    let n = images.shape[0]
    guard n > 0 else { throw EvaluationError("feature extraction", "no images") }
    backbone.eval()
    let per = images.count / n
    var outputs: [(name: String, tensor: Tensor)] = []
    var done = 0
    while done < n {
      let b = min(batchSize, n - done)
      let batch = Tensor.zeros([b] + Array(images.shape.dropFirst()))
      batch.data.update(from: images.data + done * per, count: b * per)
      let depths = try withoutGradients { try backbone.featuresByDepth(batch) }
      if outputs.isEmpty {
        outputs = depths.map { ($0.name, Tensor.zeros([n, $0.features.shape[1]])) }
      }
      for (k, d) in depths.enumerated() {
        let f = d.features.shape[1]
        (outputs[k].tensor.data + done * f).update(from: d.features.data, count: b * f)
      }
      done += b
      progress(done)
    }
    return outputs.map { LayerFeatures(name: $0.name, values: $0.tensor) }
  }

  /// Raw pixels as features: the preprocessed images [N, C, S, S] flattened to
  /// [N, C·S·S] (shares storage).
  public static func pixels(_ images: Tensor) throws -> LayerFeatures {
    LayerFeatures(
      name: "pixels", values: try images.reshaped([images.shape[0], images.count / max(1, images.shape[0])]))
  }
}

/// What a set of cached features was computed from. Two descriptions with equal `key`
/// give identical features, so a cache file is reused only when its stored key matches
/// exactly.
public struct FeatureCacheKey: Sendable, Equatable {
  /// `sha256:<hex>` of the weights file, or `random-init:<config JSON>:seed <n>`.
  public var model: String
  /// The image folder (absolute path).
  public var folder: String
  /// FNV-1a of the folder's relative paths, sizes and modification times.
  public var folderFingerprint: String
  /// `all`, or FNV-1a of the selected image indices.
  public var selection: String
  public var preprocessing: String

  public var key: String {
    """
    pretext-features v1
    model: \(model)
    folder: \(folder)
    files: \(folderFingerprint)
    selection: \(selection)
    preprocessing: \(preprocessing)
    """
  }
  public var fileName: String { "features-\(FNV1a.hex(key)).safetensors" }

  /// The key of the whole folder's features (which also serve any subset).
  public var wholeFolder: FeatureCacheKey {
    var k = self
    k.selection = "all"
    return k
  }
}

/// Features saved next to a run (safetensors: one [N, F] tensor per depth; the depth
/// order and the full key in the metadata), so that probing the same backbone again —
/// another label budget, classifier or k — skips the forward passes.
///
/// Features that do not depend on the run — the random-init baseline of an architecture
/// shared by several runs — are also looked up in `sharedDirectories` (the caches of
/// sibling runs) and hard-linked from there, so comparing tasks computes them once.
public struct FeatureCache: Sendable {
  public let directory: String
  public let sharedDirectories: [String]
  static let keyField = "pretext.features.key"
  static let layersField = "pretext.features.layers"

  public init(directory: String, sharedDirectories: [String] = []) {
    self.directory = directory
    self.sharedDirectories = sharedDirectories
  }

  /// The cache of a run folder (`RUN/probe-cache`), sharing with the caches of the
  /// other run folders beside it.
  public static func forRun(_ runDirectory: String) -> FeatureCache {
    let own = (runDirectory as NSString).appendingPathComponent("probe-cache")
    let parent = (absolutePath(runDirectory) as NSString).deletingLastPathComponent
    let siblings = ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).sorted().prefix(1000)
      .map { ((parent as NSString).appendingPathComponent($0) as NSString).appendingPathComponent("probe-cache") }
      .filter { $0 != absolutePath(own) && FileManager.default.fileExists(atPath: $0) }
    return FeatureCache(directory: own, sharedDirectories: siblings)
  }

  func path(_ key: FeatureCacheKey) -> String { (directory as NSString).appendingPathComponent(key.fileName) }

  /// The cached features for `key`, or nil when absent, stale or unreadable (a bad
  /// cache file is never an error: the features are recomputed).
  public func load(_ key: FeatureCacheKey, count: Int) -> [LayerFeatures]? {
    if let own = Self.read(path(key), key: key, count: count) { return own }
    for shared in sharedDirectories {
      let file = (shared as NSString).appendingPathComponent(key.fileName)
      guard let found = Self.read(file, key: key, count: count) else { continue }
      // Share the file (a hard link costs no space); a failed link only costs a later lookup.
      try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      _ = link(file, path(key))
      return found
    }
    return nil
  }

  static func read(_ file: String, key: FeatureCacheKey, count: Int) -> [LayerFeatures]? {
    guard FileManager.default.fileExists(atPath: file), let st = try? SafeTensors.read(path: file),
      st.metadata[keyField] == key.key,
      let layersJSON = st.metadata[layersField],
      let names = try? JSONDecoder().decode([String].self, from: Data(layersJSON.utf8)), !names.isEmpty
    else { return nil }
    var out: [LayerFeatures] = []
    for name in names {
      guard let t = st[name], t.rank == 2, t.shape[0] == count else { return nil }
      out.append(LayerFeatures(name: name, values: t))
    }
    return out
  }

  /// Saves features under `key` (atomically; creates the folder).
  public func store(_ key: FeatureCacheKey, _ layers: [LayerFeatures]) throws {
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
      throw EvaluationError(
        directory, "cannot create the feature cache folder (\(error.localizedDescription)); use --no-cache")
    }
    let names = String(decoding: try JSONEncoder().encode(layers.map(\.name)), as: UTF8.self)
    try SafeTensors(
      tensors: layers.map { ($0.name, $0.values) }, metadata: [Self.keyField: key.key, Self.layersField: names]
    ).write(to: path(key))
  }
}

extension SHA256 {
  /// The lowercase hex digest of a file's bytes, read in 1 MiB pieces.
  ///
  /// - Throws: `EvaluationError` naming the file when it cannot be opened or read.
  public static func hex(ofFile path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      let exists = FileManager.default.fileExists(atPath: path)
      throw EvaluationError(path, exists ? "cannot be read (permissions?)" : "no such file")
    }
    defer { try? handle.close() }
    var h = SHA256()
    while true {
      let chunk: Data
      do {
        chunk = try handle.read(upToCount: 1 << 20) ?? Data()
      } catch {
        throw EvaluationError(path, "read failed: \(error.localizedDescription)")
      }
      if chunk.isEmpty { break }
      h.update(chunk)
    }
    return h.hexDigest()
  }
}

enum Fingerprint {
  /// FNV-1a over each file's relative path, size and modification time (seconds): a
  /// changed, added or removed image changes it.
  static func folder(root: String, files: [String]) -> String {
    var h = FNV1a()
    for f in files {
      h.update(f)
      var st = stat()
      let full = root.isEmpty ? f : root + "/" + f
      if stat(full, &st) == 0 {
        #if canImport(Darwin)
          let mtime = Int64(st.st_mtimespec.tv_sec)
        #else
          let mtime = Int64(st.st_mtim.tv_sec)
        #endif
        h.update("|\(st.st_size)|\(mtime)\n")
      } else {
        h.update("|missing\n")
      }
    }
    return h.hex
  }

  static func indices(_ indices: [Int]) -> String {
    var h = FNV1a()
    for i in indices { h.update("\(i),") }
    return h.hex
  }
}

/// Rows `indices` of `t` [N, F] → [indices.count, F].
func rows(_ t: Tensor, _ indices: [Int]) -> Tensor {
  let f = t.count / max(1, t.shape[0])
  let out = Tensor.zeros([indices.count] + Array(t.shape.dropFirst()))
  let (src, dst) = (t.data, out.data)
  for (r, i) in indices.enumerated() { (dst + r * f).update(from: src + i * f, count: f) }
  return out
}

func absolutePath(_ path: String) -> String {
  URL(fileURLWithPath: path).standardizedFileURL.path
}
