import Autograd
import Experiments
import Foundation
import XCTest

/// projection.json of a run: the PCA itself is tested in EvaluationTests (PCATests).
final class ProjectionTests: XCTestCase {
  func testProjectionFileKeepsAClassBalancedSubset() throws {
    // 3 classes × 10 rows of 4 features; class c sits around (c, 0, 0, 0).
    let features = Tensor.zeros([30, 4])
    var labels: [Int] = []
    for i in 0..<30 {
      let c = i % 3
      labels.append(c)
      features.data[i * 4] = Float(c) * 10 + Float(i % 5) * 0.1
      features.data[i * 4 + 1] = Float(i % 7) * 0.01
    }
    let file = try ProjectionFile.pca(
      features: features, labels: labels, classes: ["a", "b", "c"], layer: "norm", folder: "/t", perClass: 4)
    XCTAssertEqual(file.points.count, 12)
    XCTAssertEqual((0..<3).map { c in file.points.filter { $0.label == c }.count }, [4, 4, 4])
    // Two dimensions vary (the other two are constant and drop out): two components hold it all.
    XCTAssertEqual(file.explainedVariance[0] + file.explainedVariance[1], 1, accuracy: 1e-9)
    XCTAssertEqual(file.method, "pca of standardized features")
    XCTAssertEqual(file.images, 30)
  }
}
