import Autograd
import Foundation
import Support
import Vision

// Which labeled images a probe learns from and is tested on: the training folder's
// labeled subset (the label budget) and the whole test folder, the test labels mapped to
// the training classes; and their pixels, decoded only when some features must be
// computed, and then once.

/// The labeled images of a probe. A class, not a struct: the decoded pixels are kept on
/// first use and shared by every model that needs them (the backbone, random init, raw
/// pixels).
final class ProbeImages {
  let train: LabeledImageFolder
  let test: LabeledImageFolder
  /// Positions in `train` of the labeled subset, ascending.
  let selection: [Int]
  /// The class of each selected training image (indexing `classes`).
  let labels: [Int]
  /// The class of each test image, as an index of the training classes.
  let testLabels: [Int]
  /// Selected training images per class.
  let perClass: [Int]
  /// FNV-1a of each folder's relative paths, sizes and modification times.
  let trainFingerprint: String
  let testFingerprint: String
  /// How the feature cache names the subset: `all`, or FNV-1a of `selection`.
  let selectionKey: String
  let preprocessing: Preprocessing
  /// Seconds spent decoding so far.
  private(set) var decodingSeconds = 0.0
  private var trainPixels: Tensor?
  private var testPixels: Tensor?

  /// The training classes; every label indexes them.
  var classes: [String] { train.classes }

  /// Opens both folders (images are not decoded yet) and selects the labeled subset.
  ///
  /// - Throws: `EvaluationError` when the test folder has a class the training folder
  ///   lacks, or the budget asks for more labels than a class has; the folders' own errors.
  init(_ options: ProbeOptions, preprocessing: Preprocessing, progress: (String) -> Void) throws {
    let train = try LabeledImageFolder(path: options.train, options: preprocessing.folderOptions)
    let test = try LabeledImageFolder(path: options.test, options: preprocessing.folderOptions)
    testLabels = try Self.mapTestLabels(train: train, test: test)
    progress(
      "train: \(train.root) — \(train.count) images, \(train.classes.count) classes; test: \(test.root) — \(test.count) images"
    )
    let selection = try LabelSubset.select(
      labels: train.labels, classNames: train.classes, budget: options.budget, seed: options.seed)
    let labels = selection.map { train.labels[$0] }
    var perClass = [Int](repeating: 0, count: train.classes.count)
    for y in labels { perClass[y] += 1 }
    self.train = train
    self.test = test
    self.selection = selection
    self.labels = labels
    self.perClass = perClass
    trainFingerprint = Fingerprint.folder(root: train.root, files: train.files)
    testFingerprint = Fingerprint.folder(root: test.root, files: test.files)
    selectionKey = options.budget == .all ? "all" : Fingerprint.indices(selection)
    self.preprocessing = preprocessing
  }

  /// The selected training images, preprocessed: [selection.count, C, S, S].
  func trainImages(progress: (String) -> Void) throws -> Tensor {
    if let trainPixels { return trainPixels }
    let t = try decode(train, indices: selection) {
      progress("decoding \(selection.count) training images (\(preprocessing.summary))")
    }
    trainPixels = t
    return t
  }

  /// Every test image, preprocessed: [test.count, C, S, S].
  func testImages(progress: (String) -> Void) throws -> Tensor {
    if let testPixels { return testPixels }
    let t = try decode(test, indices: Array(0..<test.count)) { progress("decoding \(test.count) test images") }
    testPixels = t
    return t
  }

  private func decode(_ folder: LabeledImageFolder, indices: [Int], announce: () -> Void) throws -> Tensor {
    let clock = Stopwatch()
    announce()
    let t = try ImageLoading.load(folder, indices: indices, preprocessing: preprocessing)
    decodingSeconds += clock.seconds
    return t
  }

  /// Test labels as indices of the training classes (matched by name).
  static func mapTestLabels(train: LabeledImageFolder, test: LabeledImageFolder) throws -> [Int] {
    let index = Dictionary(uniqueKeysWithValues: train.classes.enumerated().map { ($1, $0) })
    let unknown = test.classes.filter { index[$0] == nil }
    guard unknown.isEmpty else {
      throw EvaluationError(
        test.root,
        "has class folder(s) \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")) that the training folder \(train.root) "
          + "lacks (its classes: \(train.classes.joined(separator: ", "))); a classifier can only predict classes it was trained on"
      )
    }
    return test.labels.map { index[test.classes[$0]]! }
  }
}
