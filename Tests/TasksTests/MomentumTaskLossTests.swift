import Autograd
import Tasks
import XCTest

/// BYOL's and MoCo v3's losses on values worked out by hand.
final class MomentumTaskLossTests: XCTestCase {
  func testNormalizedMSEIsTwoMinusTwiceTheCosine() throws {
    // Rows: the same direction (cos 1, any length), orthogonal (cos 0), opposite (cos −1).
    let p = try Tensor(shape: [3, 2], [1, 0, 0, 3, 2, 0], requiresGrad: true)
    let z = try Tensor(shape: [3, 2], [5, 0, 1, 0, -1, 0])
    let (loss, cosine) = try normalizedMSELoss(p, z)
    XCTAssertEqual(cosine, 0, accuracy: 1e-6)  // (1 + 0 − 1) / 3
    XCTAssertEqual(try loss.item(), 2, accuracy: 1e-6)  // mean of 0, 2, 4
    try loss.backward()
    XCTAssertNotNil(p.grad)
    XCTAssertNil(z.grad, "the target gets no gradient")
  }

  func testInfoNCEIsScaledCrossEntropyWithPositivesAtTheOffset() throws {
    // Two queries against four keys; query i's positive is key 2 + i. τ = 0.5:
    // logits = 2·q̂·k̂; query 0 (along x) sees [0, −2, 2, 0] → CE = log(2 + e⁻² + e²) − 2;
    // query 1 (along y) sees [2, 0, 0, 2] → its positive (key 3) ties with key 0.
    let q = try Tensor(shape: [2, 2], [1, 0, 0, 4], requiresGrad: true)
    let k = try Tensor(shape: [4, 2], [0, 1, -1, 0, 3, 0, 0, 2])
    let (loss, top1) = try infoNCELoss(queries: q, keys: k, temperature: 0.5, positivesFrom: 2)
    let e2 = exp(2.0)
    let ce0 = log(2 + exp(-2.0) + e2) - 2, ce1 = log(2 + 2 * e2) - 2
    XCTAssertEqual(Double(try loss.item()), 2 * 0.5 * (ce0 + ce1) / 2, accuracy: 1e-5)
    XCTAssertEqual(top1, 0.5, "query 1's argmax is the first of the tied keys, key 0")
    XCTAssertThrowsError(try infoNCELoss(queries: q, keys: k, temperature: 0.5, positivesFrom: 3))
    XCTAssertThrowsError(try infoNCELoss(queries: q, keys: k, temperature: 0, positivesFrom: 0))
  }
}
