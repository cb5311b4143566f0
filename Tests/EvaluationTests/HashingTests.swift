import Autograd
import Evaluation
import Foundation
import Support
import XCTest

final class HashingTests: XCTestCase {
  /// FIPS 180-4 examples (one block, two blocks) and the empty message.
  func testSHA256KnownDigests() {
    XCTAssertEqual(SHA256.hex(Array("".utf8)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    XCTAssertEqual(
      SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    // One million "a": many blocks.
    XCTAssertEqual(
      SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)),
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  func testSHA256StreamingAndFilesAgree() throws {
    let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 31 + 7) }
    var h = SHA256()
    for piece in stride(from: 0, to: bytes.count, by: 37) { h.update(bytes[piece..<min(bytes.count, piece + 37)]) }
    XCTAssertEqual(h.hexDigest(), SHA256.hex(bytes))
    XCTAssertEqual(h.finalize().count, 32)
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)").path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    XCTAssertEqual(try SHA256.hex(ofFile: path), SHA256.hex(bytes))
    XCTAssertThrowsError(try SHA256.hex(ofFile: path + ".missing")) { error in
      XCTAssertTrue("\(error)".contains("no such file"), "\(error)")
    }
  }

  func testFNV1aReferenceValues() {
    // Reference values of 64-bit FNV-1a.
    XCTAssertEqual(FNV1a.hex(""), "cbf29ce484222325")
    XCTAssertEqual(FNV1a.hex("a"), "af63dc4c8601ec8c")
    XCTAssertEqual(FNV1a.hex("foobar"), "85944171f73967e8")
  }
}
