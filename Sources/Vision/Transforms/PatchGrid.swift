// Patch pairs for the relative-location pretext task (Doersch, Gupta & Efros 2015,
// "Unsupervised Visual Representation Learning by Context Prediction",
// https://arxiv.org/abs/1505.05192): show the network the centre patch of a 3×3 grid and
// one of its 8 neighbours, and ask which neighbour it is.
//
// Geometry (all in pixels, rows and columns alike):
//
//     gridSize = 3·patchSize + 2·gap          the nominal 3×3 grid, gaps between patches
//     cell (r, c) of the grid, r, c ∈ 0...2, has its top-left corner at
//         (gridTop + r·(patchSize + gap), gridLeft + c·(patchSize + gap))
//     each sampled patch is then shifted by (dy, dx), each uniform in -jitter...jitter
//
//     ┌────┐ gap ┌────┐ gap ┌────┐
//     │ 0  │     │ 1  │     │ 2  │      labels: the 8 neighbours in row-major order,
//     └────┘     └────┘     └────┘      skipping the centre
//       gap
//     ┌────┐     ┌────┐     ┌────┐
//     │ 3  │     │ C  │     │ 4  │
//     └────┘     └────┘     └────┘
//       gap
//     ┌────┐     ┌────┐     ┌────┐
//     │ 5  │     │ 6  │     │ 7  │
//     └────┘     └────┘     └────┘
//
// The gap and the jitter are the paper's defences against trivial shortcuts (continuing
// lines and textures across patch borders). Jitter is limited to gap/2 so that two
// patches never overlap. Because border patches may be jittered outward, the grid needs
// `gridSize + 2·jitter` pixels per side (`minimumImageSize`); when the image is larger,
// the grid is placed uniformly at random inside it, with that margin kept.

import Autograd

/// Samples (centre patch, neighbour patch, label) triples for relative location.
///
/// Each call draws, in this order: the grid position (row, then column), the label
/// (0..<8), the centre patch's jitter (dy, dx), the neighbour's jitter (dy, dx).
public struct PatchGridSampler: Sendable {
  public let patchSize: Int
  public let gap: Int
  public let jitter: Int

  /// `patchSize ≥ 1`, `gap ≥ 0`, `0 ≤ jitter ≤ gap / 2` (patches never overlap).
  public init(patchSize: Int, gap: Int, jitter: Int) throws {
    guard patchSize > 0 else {
      throw TransformError("PatchGridSampler", "patchSize must be positive, got \(patchSize)")
    }
    guard gap >= 0 else { throw TransformError("PatchGridSampler", "gap must be ≥ 0, got \(gap)") }
    guard jitter >= 0 && 2 * jitter <= gap else {
      throw TransformError(
        "PatchGridSampler",
        "jitter must be in 0...gap/2 so that patches never overlap, got jitter \(jitter) with gap \(gap)")
    }
    self.patchSize = patchSize
    self.gap = gap
    self.jitter = jitter
  }

  /// Side of the nominal 3×3 grid: `3·patchSize + 2·gap`.
  public var gridSize: Int { 3 * patchSize + 2 * gap }
  /// Smallest image side the sampler accepts: `gridSize + 2·jitter`.
  public var minimumImageSize: Int { gridSize + 2 * jitter }
  /// Distance between the top-left corners of adjacent cells: `patchSize + gap`.
  public var stride: Int { patchSize + gap }

  /// The grid offset `(rows, columns)`, each in -1...1, of the neighbour with `label`
  /// relative to the centre (label 0 is top-left (-1, -1), 7 is bottom-right (1, 1)).
  public static func offset(forLabel label: Int) -> (rows: Int, columns: Int) {
    precondition((0..<8).contains(label), "PatchGridSampler: label must be in 0..<8, got \(label)")
    let cell = label < 4 ? label : label + 1  // skip the centre cell 4 of 0..<9
    return (cell / 3 - 1, cell % 3 - 1)
  }

  /// The label of the neighbour at grid offset `(rows, columns)`, nil for the centre or an
  /// offset outside -1...1.
  public static func label(forOffset rows: Int, _ columns: Int) -> Int? {
    guard (-1...1).contains(rows), (-1...1).contains(columns), rows != 0 || columns != 0 else { return nil }
    let cell = (rows + 1) * 3 + (columns + 1)
    return cell < 4 ? cell : cell - 1
  }

  /// Where one sample's patches lie in the image.
  public struct Layout: Sendable, Equatable {
    /// Top-left corner of the nominal grid (before jitter).
    public var gridTop: Int
    public var gridLeft: Int
    /// The jittered centre and neighbour patches (`patchSize × patchSize` each).
    public var center: CropBox
    public var neighbor: CropBox
    /// 0..<8, see `offset(forLabel:)`.
    public var label: Int
  }

  /// One sample: both patches (`[C, patchSize, patchSize]`, same channels as the image)
  /// and the label of the neighbour's position.
  public struct Sample: Sendable, Equatable {
    public var center: FloatImage
    public var neighbor: FloatImage
    public var label: Int
  }

  /// Draws a layout for an image of `height × width` (the random part, exposed so its
  /// geometry can be checked).
  ///
  /// - Throws: `TransformError` when a side is smaller than `minimumImageSize`.
  public func sampleLayout(height: Int, width: Int, using rng: inout RandomGenerator) throws -> Layout {
    let need = minimumImageSize
    guard height >= need && width >= need else {
      throw TransformError(
        "PatchGridSampler",
        "image of \(height)×\(width) pixels is too small: the 3×3 grid needs \(need)×\(need) "
          + "(3·patch \(patchSize) + 2·gap \(gap) = \(gridSize), plus 2·jitter \(jitter))")
    }
    let top = jitter + rng.nextInt(below: height - need + 1)
    let left = jitter + rng.nextInt(below: width - need + 1)
    let label = rng.nextInt(below: 8)
    let (dr, dc) = Self.offset(forLabel: label)
    func patch(row: Int, column: Int, using rng: inout RandomGenerator) -> CropBox {
      let dy = rng.nextInt(below: 2 * jitter + 1) - jitter
      let dx = rng.nextInt(below: 2 * jitter + 1) - jitter
      return CropBox(
        top: top + row * stride + dy, left: left + column * stride + dx, height: patchSize, width: patchSize)
    }
    let center = patch(row: 1, column: 1, using: &rng)
    let neighbor = patch(row: 1 + dr, column: 1 + dc, using: &rng)
    return Layout(gridTop: top, gridLeft: left, center: center, neighbor: neighbor, label: label)
  }

  /// Samples a layout and cuts both patches out of `image`.
  ///
  /// - Throws: `TransformError` when the image is smaller than `minimumImageSize` on a side.
  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) throws -> Sample {
    let layout = try sampleLayout(height: image.height, width: image.width, using: &rng)
    return Sample(
      center: image.cropped(to: layout.center), neighbor: image.cropped(to: layout.neighbor), label: layout.label)
  }
}
