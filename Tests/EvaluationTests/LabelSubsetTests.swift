import Evaluation
import XCTest

final class LabelSubsetTests: XCTestCase {
  /// 3 classes of 50, 30 and 20 images, interleaved.
  let labels: [Int] = (0..<100).map { i in
    if i < 60 { return i % 2 }
    return i < 80 ? 0 : 2
  }
  var names: [String] { ["a", "b", "c"] }
  var counts: [Int] {
    var c = [0, 0, 0]
    for y in labels { c[y] += 1 }
    return c
  }

  func testPerClassIsBalancedDeterministicAndNested() throws {
    let five = try LabelSubset.select(labels: labels, classNames: names, budget: .perClass(5), seed: 1)
    XCTAssertEqual(five.count, 15)
    XCTAssertEqual(five, five.sorted())
    XCTAssertEqual(Set(five).count, 15)
    for c in 0..<3 { XCTAssertEqual(five.filter { labels[$0] == c }.count, 5) }
    XCTAssertEqual(five, try LabelSubset.select(labels: labels, classNames: names, budget: .perClass(5), seed: 1))
    XCTAssertNotEqual(five, try LabelSubset.select(labels: labels, classNames: names, budget: .perClass(5), seed: 2))
    // A larger budget with the same seed contains the smaller one.
    let ten = try LabelSubset.select(labels: labels, classNames: names, budget: .perClass(10), seed: 1)
    XCTAssertTrue(Set(five).isSubset(of: Set(ten)))
    XCTAssertEqual(try LabelSubset.select(labels: labels, classNames: names, budget: .all, seed: 1), Array(0..<100))
  }

  func testTooFewImagesNamesTheClass() {
    XCTAssertThrowsError(try LabelSubset.select(labels: labels, classNames: names, budget: .perClass(25), seed: 0)) {
      error in
      XCTAssertTrue("\(error)".contains("class \"c\" has only 20"), "\(error)")
    }
    XCTAssertThrowsError(try LabelSubset.select(labels: labels, classNames: names, budget: .perClass(0), seed: 0))
    XCTAssertThrowsError(try LabelSubset.select(labels: labels, classNames: names, budget: .fraction(1.5), seed: 0))
  }

  func testFractionKeepsTheClassProportions() throws {
    let tenth = try LabelSubset.select(labels: labels, classNames: names, budget: .fraction(0.1), seed: 0)
    XCTAssertEqual(tenth.filter { labels[$0] == 0 }.count, counts[0] / 10)
    XCTAssertEqual(tenth.filter { labels[$0] == 1 }.count, counts[1] / 10)
    XCTAssertEqual(tenth.filter { labels[$0] == 2 }.count, counts[2] / 10)
  }

  func testValidationSplitIsClassBalancedAndDisjoint() throws {
    let split = try XCTUnwrap(LabelSubset.validationSplit(labels: labels, classes: 3, fraction: 0.1, seed: 3))
    XCTAssertEqual(Set(split.train).intersection(split.validation).count, 0)
    XCTAssertEqual(split.train.count + split.validation.count, labels.count)
    for c in 0..<3 {
      XCTAssertEqual(split.validation.filter { labels[$0] == c }.count, Int((Double(counts[c]) * 0.1).rounded()))
    }
    let again = try XCTUnwrap(LabelSubset.validationSplit(labels: labels, classes: 3, fraction: 0.1, seed: 3))
    XCTAssertEqual(split.validation, again.validation)
    // One image in a class: nothing can be held out.
    XCTAssertNil(LabelSubset.validationSplit(labels: [0, 0, 1], classes: 2, fraction: 0.5, seed: 0))
    // Two per class: one each side.
    let tiny = try XCTUnwrap(LabelSubset.validationSplit(labels: [0, 1, 0, 1], classes: 2, fraction: 0.9, seed: 0))
    XCTAssertEqual(tiny.validation.count, 2)
    XCTAssertEqual(tiny.train.count, 2)
  }
}
