import Autograd
import Backbones

// Which depths of a backbone a probe compares, and on which labels it chooses among
// them: the candidates (every single depth and the deepest ones concatenated, the last
// depth, or the one asked for) and the class-balanced validation split that scores them.

/// The depths that compete for the backbone and its random-init baseline (raw pixels
/// have one depth only).
struct DepthChoice {
  /// Depth names (`layer4`) or concatenations (`layer3+layer4`); one: no choice to make.
  let candidates: [String]
  /// Positions in the labeled subset: the candidates are trained on `train` and scored on
  /// `validation`. Nil when a single depth was asked for, or the labels are too few.
  let split: (train: [Int], validation: [Int])?
  /// Why no choice was made though several depths were asked for (for probe.json).
  let note: String?

  /// - Parameters:
  ///   - labels: the class of each image of the labeled subset.
  /// - Throws: `EvaluationError` when `options.layers` names a depth the backbone lacks.
  init(_ options: ProbeOptions, backbone: any Backbone, labels: [Int], classes: Int) throws {
    let names = try Self.depthNames(of: backbone)
    let asked: [String]
    switch options.layers {
    case .all:
      // Single depths, then the deepest 2…N together ("layer3+layer4").
      let deepest = Swift.min(options.concatenatedDepths, names.count)
      asked = names + (deepest >= 2 ? (2...deepest).map { names.suffix($0).joined(separator: "+") } : [])
    case .last: asked = [names.last!]
    case .named(let name):
      guard names.contains(name) else {
        throw EvaluationError(
          "--layers \(name)",
          "\(backbone.config.name) has no such depth; choose all, last or one of: \(names.joined(separator: ", "))")
      }
      asked = [name]
    }
    split =
      asked.count > 1
      ? LabelSubset.validationSplit(
        labels: labels, classes: classes, fraction: options.validationFraction, seed: options.seed &+ 1) : nil
    note =
      asked.count > 1 && split == nil ? "too few labels per class for a validation split; the last depth is used" : nil
    // Without a split nothing competes: the deepest single depth (or the one asked for).
    candidates = split == nil ? [asked.count > 1 ? names.last! : asked[0]] : asked
  }

  /// The depth names of a backbone, shallow to deep (one forward pass on a single blank
  /// image).
  static func depthNames(of backbone: any Backbone) throws -> [String] {
    let c = backbone.config
    backbone.eval()
    let x = Tensor.zeros([1, c.inChannels, c.imageSize, c.imageSize])
    return try withoutGradients { try backbone.featuresByDepth(x).map(\.name) }
  }
}
