import Autograd
import Experiments
import Foundation
import Vision
import XCTest

/// The retrieval grid on features whose neighbours are known.
final class RetrievalTests: XCTestCase {
  func testNeighboursAreTheMostSimilarRowsAndTheFramesShowTheirClass() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-retrieval-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    // Two classes of 4 images; the folder lists a/0…a/3 then b/0…b/3 (rows 0–7).
    for (c, name) in ["a", "b"].enumerated() {
      let sub = dir.appendingPathComponent(name)
      try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
      for i in 0..<4 {
        try PNG.write(
          Image(width: 5 + i, height: 7, channels: 1, filledWith: UInt8(40 * c + 10 * i)),
          to: sub.appendingPathComponent("\(i).png").path)
      }
    }
    let folder = try LabeledImageFolder(path: dir.path)
    XCTAssertEqual(folder.labels, [0, 0, 0, 0, 1, 1, 1, 1])
    // Features: class a along (1, 0, 0), class b along (0, 1, 0), each row tilted towards
    // the third axis by its own amount, so the cosine order is known; row 7 (class b)
    // leans towards class a's direction.
    let rows: [[Float]] = [
      [1, 0, 0], [1, 0, 0.1], [1, 0, 0.2], [1, 0, 0.4],
      [0, 1, 0], [0, 1, 0.1], [0, 1, 0.3], [1, 1.2, 0],
    ]
    let features = try Tensor(shape: [8, 3], rows.flatMap { $0 })
    let r = try RetrievalFile.nearest(
      features: features, labels: folder.labels, classes: folder.classes, folder: folder, layer: "layer4", queries: 2,
      neighbours: 3)
    // Queries evenly spaced: rows 0 and 4.
    XCTAssertEqual(r.queries.map(\.index), [0, 4])
    // Row 0's closest: rows 1, 2, 3 (cos 0.995, 0.981, 0.928), before row 7 (1/√2.44 = 0.640).
    XCTAssertEqual(r.queries[0].neighbours, [1, 2, 3])
    XCTAssertEqual(r.queries[0].sameClass, 3)
    // Row 4's: row 5 (cos 1/√1.01 = 0.995), row 6 (1/√1.09 = 0.958), row 7 (1.2/√2.44 = 0.768).
    XCTAssertEqual(r.queries[1].neighbours, [5, 6, 7])
    XCTAssertEqual(r.queries[1].similarities[0], 1 / (1.01 as Double).squareRoot(), accuracy: 1e-6)
    XCTAssertEqual(r.queries[1].files, ["b/1.png", "b/2.png", "b/3.png"])
    XCTAssertEqual(r.precision, 1)

    // The grid: 2 rows of (query + 3 neighbours) tiles of 48 px in 3-px frames.
    let grid = try r.picture(folder: folder, tile: 48)
    XCTAssertEqual(grid.width, 54 + 10 + 3 * 54 + 2 * 2)
    XCTAssertEqual(grid.height, 2 * 54 + 2)
    XCTAssertEqual(grid.channels, 3)
    // Frames: the query's dark gray, a neighbour of its class green.
    XCTAssertEqual((0..<3).map { grid[0, 0, $0] }, [64, 64, 64])
    XCTAssertEqual((0..<3).map { grid[64, 0, $0] }, [44, 160, 44])
    // A tile holds its image: row 4 (b/0.png) is filled with 40, gray to RGB.
    XCTAssertEqual((0..<3).map { grid[3 + 24, 56 + 3 + 24, $0] }, [40, 40, 40])
  }

  func testAWrongClassNeighbourIsFramedRed() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-retrieval-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    for name in ["a", "b"] {
      let sub = dir.appendingPathComponent(name)
      try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
      try PNG.write(Image(width: 3, height: 3, channels: 3, filledWith: 9), to: sub.appendingPathComponent("x.png").path)
    }
    let folder = try LabeledImageFolder(path: dir.path)
    let r = try RetrievalFile.nearest(
      features: try Tensor(shape: [2, 2], [1, 0, 1, 0.5]), labels: folder.labels, classes: folder.classes, folder: folder,
      layer: "norm", queries: 8, neighbours: 8)
    // Two images: two queries, one neighbour each (the other image), of another class.
    XCTAssertEqual(r.queries.map(\.neighbours), [[1], [0]])
    XCTAssertEqual(r.precision, 0)
    let grid = try r.picture(folder: folder, tile: 4)
    XCTAssertEqual((0..<3).map { grid[10 + 10, 0, $0] }, [214, 39, 40])
  }
}
