import Autograd
import Foundation
import Support
import Vision

// What the comparison report shows of a run's neighbourhoods: retrieval.json and
// retrieval.png, a few test images, each with its nearest neighbours among all the test
// images in the backbone's feature space (cosine similarity, as the kNN probe), so that
// a reader sees what "similar" means to the backbone without any label. The labels only
// colour the frames (green: the neighbour is of the query's class).

public struct RetrievalFile: Codable, Sendable, Equatable {
  public struct Query: Codable, Sendable, Equatable {
    /// Row of the query in the folder (byte-wise path order), its file and class.
    public var index: Int
    public var file: String
    public var label: Int
    /// The nearest other images, closest first: rows, files and cosine similarities.
    public var neighbours: [Int]
    public var files: [String]
    public var similarities: [Double]
    /// How many neighbours share the query's class.
    public var sameClass: Int

    enum CodingKeys: String, CodingKey {
      case index, file, label, neighbours, files, similarities, sameClass = "same_class"
    }
  }
  public var layer: String
  public var folder: String
  public var images: Int
  public var classes: [String]
  public var queries: [Query]

  /// The share of neighbours of the query's class, over all queries (precision at k).
  public var precision: Double {
    let shown = queries.reduce(0) { $0 + $1.neighbours.count }
    return shown == 0 ? 0 : Double(queries.reduce(0) { $0 + $1.sameClass }) / Double(shown)
  }

  public static func path(in runDirectory: String) -> String {
    (runDirectory as NSString).appendingPathComponent("retrieval.json")
  }
  public static func picturePath(in runDirectory: String) -> String {
    (runDirectory as NSString).appendingPathComponent("retrieval.png")
  }

  /// `queries` images evenly spaced over the folder (which lists the classes in order,
  /// so they spread over the classes), each with its `neighbours` nearest other images
  /// by cosine similarity of `features` [N, F] (row i: image i of `folder`).
  public static func nearest(
    features: Tensor, labels: [Int], classes: [String], folder: LabeledImageFolder, layer: String, queries: Int = 8,
    neighbours k: Int = 8
  ) throws -> RetrievalFile {
    let (n, f) = (features.shape[0], features.shape[1])
    guard labels.count == n, folder.count == n else {
      throw ConfigError("retrieval: \(n) feature rows for \(labels.count) labels and \(folder.count) images")
    }
    guard n >= 2 else { throw ConfigError("retrieval: \(folder.root) needs at least 2 images, has \(n)") }
    // Unit rows: the dot product is the cosine similarity.
    var unit = [Float](repeating: 0, count: n * f)
    let p = features.data
    for r in 0..<n {
      var norm: Float = 0
      for c in 0..<f { norm += p[r * f + c] * p[r * f + c] }
      let scale = norm > 0 ? 1 / norm.squareRoot() : 0
      for c in 0..<f { unit[r * f + c] = p[r * f + c] * scale }
    }
    let count = min(queries, n)
    let shown = min(k, n - 1)
    var out: [Query] = []
    for q in 0..<count {
      let i = q * n / count
      var similarity = [(row: Int, value: Float)]()
      similarity.reserveCapacity(n - 1)
      for j in 0..<n where j != i {
        var s: Float = 0
        for c in 0..<f { s += unit[i * f + c] * unit[j * f + c] }
        similarity.append((j, s))
      }
      // Closest first; equal similarities by row, so the grid is the same every time.
      let top = similarity.sorted { $0.value != $1.value ? $0.value > $1.value : $0.row < $1.row }.prefix(shown)
      out.append(
        Query(
          index: i, file: folder.files[i], label: labels[i], neighbours: top.map(\.row), files: top.map { folder.files[$0.row] },
          similarities: top.map { Double($0.value) }, sameClass: top.filter { labels[$0.row] == labels[i] }.count))
    }
    return RetrievalFile(layer: layer, folder: folder.root, images: n, classes: classes, queries: out)
  }

  /// The grid: one row per query, the query then (after a wider gap) its neighbours,
  /// each `tile` px (resized and centre-cropped), framed dark gray (the query), green
  /// (a neighbour of its class) or red (of another class). RGB.
  public func picture(folder: LabeledImageFolder, tile: Int = 48) throws -> Image {
    let frame = 3, gap = 2, queryGap = 10
    let cell = tile + 2 * frame
    let columns = queries.map(\.neighbours.count).max() ?? 0
    let width = cell + queryGap + columns * cell + max(0, columns - 1) * gap
    let height = queries.count * cell + max(0, queries.count - 1) * gap
    var grid = Image(width: max(1, width), height: max(1, height), channels: 3, filledWith: 255)
    let prepare = Compose(try ConvertChannels(to: 3), try Resize(shorterSide: tile), try CenterCrop(size: tile))
    func draw(_ row: Int, at x0: Int, _ y0: Int, color: [UInt8]) throws {
      var rng = RandomGenerator(seed: 0)
      let image = prepare(FloatImage(try folder.loadImage(at: row)), using: &rng).toImage()
      for y in 0..<cell {
        for x in 0..<cell {
          let inside = x >= frame && x < frame + tile && y >= frame && y < frame + tile
          for c in 0..<3 { grid[x0 + x, y0 + y, c] = inside ? image[x - frame, y - frame, c] : color[c] }
        }
      }
    }
    for (r, q) in queries.enumerated() {
      let y0 = r * (cell + gap)
      try draw(q.index, at: 0, y0, color: [64, 64, 64])
      for (j, row) in q.neighbours.enumerated() {
        let same = folder.labels[row] == q.label
        try draw(row, at: cell + queryGap + j * (cell + gap), y0, color: same ? [44, 160, 44] : [214, 39, 40])
      }
    }
    return grid
  }
}
