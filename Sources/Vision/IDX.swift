import CZlib
import Foundation

// IDX: the array format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).
//
// Layout of a file (all integers big-endian):
//
//   bytes 0-1   0x00 0x00
//   byte  2     type code: 0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32,
//               0x0D float32, 0x0E float64
//   byte  3     number of dimensions d
//   4 … 4+4d    d sizes, UInt32 each (the first is the item count)
//   then        the values, row-major (last dimension fastest), nothing after them
//
// So an image file is magic 0x00000803 + [count, rows, columns] and a label file is
// 0x00000801 + [count]. Only unsigned-byte data is read (every dataset Pretext imports
// uses it); other type codes are refused by name rather than misread.

/// What an IDX header declares.
public struct IDXHeader: Sendable, Hashable {
  /// Byte 2 of the magic number (0x08 = unsigned byte).
  public let typeCode: UInt8
  /// The dimension sizes, outermost first (`[count, rows, columns]` for images).
  public let shape: [Int]

  public init(typeCode: UInt8, shape: [Int]) {
    self.typeCode = typeCode
    self.shape = shape
  }

  /// The 32-bit magic number, e.g. 0x00000803 for unsigned-byte 3-D arrays.
  public var magic: UInt32 { UInt32(typeCode) << 8 | UInt32(shape.count) }
  /// Bytes before the data: 4 for the magic number and 4 per dimension.
  public var headerSize: Int { 4 + 4 * shape.count }
  /// Number of values (the product of the dimensions).
  public var valueCount: Int { shape.reduce(1, *) }
  /// Dimension sizes written as `60000 × 28 × 28`.
  public var shapeText: String { shape.map(String.init).joined(separator: " × ") }
}

/// An unsigned-byte IDX array in memory.
///
/// Layout: `values` is row-major over `shape` (last dimension fastest), so item `i` (a
/// slice along the first dimension, e.g. one 28×28 image) is
/// `values[i * itemSize ..< (i + 1) * itemSize]`.
public struct IDXArray: Sendable, Hashable {
  public let shape: [Int]
  public let values: [UInt8]

  /// `values.count` must equal the product of `shape` (at least one dimension).
  public init(shape: [Int], values: [UInt8]) {
    precondition(!shape.isEmpty, "IDXArray: at least one dimension is needed")
    precondition(shape.allSatisfy { $0 >= 0 }, "IDXArray: negative dimension in \(shape)")
    precondition(
      values.count == shape.reduce(1, *),
      "IDXArray: \(values.count) values do not fill shape \(shape)")
    self.shape = shape
    self.values = values
  }

  /// Items along the first dimension (images or labels).
  public var count: Int { shape[0] }
  /// The shape of one item (`[rows, columns]` for images, `[]` for labels).
  public var itemShape: [Int] { Array(shape.dropFirst()) }
  /// Values per item.
  public var itemSize: Int { itemShape.reduce(1, *) }

  /// The values of item `index` (a view into `values`, no copy).
  public func item(_ index: Int) -> ArraySlice<UInt8> {
    values[index * itemSize..<(index + 1) * itemSize]
  }
}

/// Reading and writing IDX files, gzip-compressed (`.gz`, as Debian ships them) or plain.
public enum IDX {
  /// The type code of unsigned bytes, the only one read.
  public static let unsignedByte: UInt8 = 0x08

  /// Decompressed files larger than this are refused (4 GiB: far above any IDX dataset,
  /// low enough that a corrupt or hostile file cannot exhaust memory).
  public static let defaultMaxBytes = 4 << 30

  /// Reads and validates the IDX file at `path` (gzip-compressed or plain: the content
  /// decides, not the name).
  ///
  /// - Throws: `VisionError` naming the file: missing/unreadable/corrupt gzip (`.io`), bad
  ///   magic, a type other than unsigned byte, or a length that differs from what the
  ///   header declares (`.wrongLength`, both truncated files and trailing bytes).
  public static func read(path: String, maxBytes: Int = defaultMaxBytes) throws -> IDXArray {
    try withFileBytes(path, maxBytes: maxBytes) { try parse($0, path: path) }
  }

  /// Reads and validates only what `read` validates, without keeping the values. The
  /// whole file is still decompressed: checking the exact length needs it.
  public static func header(path: String, maxBytes: Int = defaultMaxBytes) throws -> IDXHeader {
    try withFileBytes(path, maxBytes: maxBytes) { try parseHeader($0, path: path) }
  }

  /// Parses a complete IDX file held in memory. `path` names the source in errors.
  public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> IDXArray {
    let header = try parseHeader(bytes, path: path)
    let data = UnsafeRawBufferPointer(rebasing: bytes[header.headerSize...])
    return IDXArray(shape: header.shape, values: [UInt8](data))
  }

  /// Parses a complete IDX file held in memory (`[UInt8]`, `Data`, ...).
  public static func parse(_ bytes: some ContiguousBytes, path: String) throws -> IDXArray {
    try bytes.withUnsafeBytes { try parse($0, path: path) }
  }

  /// Validates the header of a complete IDX file held in memory, including that the data
  /// after it has exactly the declared length.
  public static func parseHeader(_ bytes: UnsafeRawBufferPointer, path: String) throws
    -> IDXHeader
  {
    func fail(_ kind: VisionError.Kind, _ reason: String) -> VisionError {
      VisionError(kind: kind, path: path, reason: reason)
    }
    let fix = "check that it is the right file, or re-download / reinstall it"
    guard bytes.count >= 4 else {
      throw fail(
        .wrongLength,
        "\(bytes.count) bytes is too short for an IDX file (the magic number alone is 4); \(fix)")
    }
    let magic = readUInt32(bytes, at: 0)
    let typeCode = bytes[2]
    let dimensions = Int(bytes[3])
    guard bytes[0] == 0, bytes[1] == 0, typeName(typeCode) != nil, dimensions > 0 else {
      throw fail(
        .badMagic,
        "magic number 0x\(hex(magic)) is not an IDX header (expected 0x0000TTDD: type code TT "
          + "0x08…0x0E, DD ≥ 1 dimensions); \(fix)")
    }
    guard typeCode == unsignedByte else {
      throw fail(
        .unsupported,
        "IDX type code 0x\(hex(typeCode)) (\(typeName(typeCode)!)) is not supported: only "
          + "unsigned-byte data (0x08) is read; convert the file to unsigned bytes")
    }
    let headerSize = 4 + 4 * dimensions
    guard bytes.count >= headerSize else {
      throw fail(
        .wrongLength,
        "\(bytes.count) bytes is too short for the header of \(dimensions) dimensions "
          + "(\(headerSize) bytes); the file is truncated: \(fix)")
    }
    var shape: [Int] = []
    var product = 1
    var overflow = false
    for d in 0..<dimensions {
      let size = Int(readUInt32(bytes, at: 4 + 4 * d))
      shape.append(size)
      if !overflow {
        let (p, o) = product.multipliedReportingOverflow(by: size)
        product = p
        overflow = o
      }
    }
    let header = IDXHeader(typeCode: typeCode, shape: shape)
    let have = bytes.count - headerSize
    guard !overflow, have == product else {
      let need = overflow ? "more than \(Int.max)" : "\(product)"
      let what = !overflow && have < product ? "the file is truncated" : "the file has trailing bytes"
      throw fail(
        .wrongLength,
        "the header declares \(header.shapeText) unsigned bytes (\(need) bytes of data) but "
          + "\(have) follow the \(headerSize)-byte header: \(what); \(fix)")
    }
    return header
  }

  /// The bytes of an IDX file holding `array` (uncompressed). For tests and for writing
  /// derived datasets.
  public static func encode(_ array: IDXArray) -> [UInt8] {
    precondition(array.shape.count <= 255, "IDX: at most 255 dimensions")
    var bytes: [UInt8] = [0, 0, unsignedByte, UInt8(array.shape.count)]
    for size in array.shape {
      precondition(size <= Int(UInt32.max), "IDX: dimension \(size) does not fit in 32 bits")
      let s = UInt32(size)
      bytes += [UInt8(s >> 24), UInt8((s >> 16) & 0xFF), UInt8((s >> 8) & 0xFF), UInt8(s & 0xFF)]
    }
    return bytes + array.values
  }

  /// Writes `array` as an uncompressed IDX file, atomically (temporary file + rename).
  public static func write(_ array: IDXArray, to path: String) throws {
    do {
      try PNG.writeAtomically(encode(array), to: path)
    } catch let error as VisionError {
      throw VisionError(kind: .io, path: path, reason: error.reason)
    }
  }

  // MARK: Implementation

  /// The whole file, gunzipped when it is compressed, lent to `body`.
  static func withFileBytes<T>(
    _ path: String, maxBytes: Int, _ body: (UnsafeRawBufferPointer) throws -> T
  ) throws -> T {
    var data: UnsafeMutablePointer<UInt8>? = nil
    var size = 0
    var message = [CChar](repeating: 0, count: 512)
    let status = czlib_read_file(path, max(1, maxBytes), &data, &size, &message, message.count)
    defer { czlib_free(data) }
    guard status == 0 else {
      let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      throw VisionError(kind: .io, path: path, reason: text + "; check the path and that the file is intact")
    }
    return try body(UnsafeRawBufferPointer(start: data, count: size))
  }

  static func readUInt32(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
    UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
      | UInt32(bytes[offset + 3])
  }

  static func typeName(_ code: UInt8) -> String? {
    switch code {
    case 0x08: return "unsigned byte"
    case 0x09: return "signed byte"
    case 0x0B: return "16-bit integer"
    case 0x0C: return "32-bit integer"
    case 0x0D: return "32-bit float"
    case 0x0E: return "64-bit float"
    default: return nil
    }
  }

  static func hex<T: FixedWidthInteger>(_ value: T) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, T.bitWidth / 4 - digits.count)) + digits
  }
}
