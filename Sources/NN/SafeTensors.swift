import Autograd
import Foundation
import Support

/// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte
/// little-endian header length N, N bytes of JSON header
/// `{"__metadata__": {string: string}, name: {"dtype", "shape", "data_offsets": [begin, end]}}`
/// (offsets relative to the data area), then the raw little-endian tensor data.
///
/// Pretext writes float32 tensors sorted by name with the JSON keys sorted and the header
/// padded with spaces to 8 bytes, so the same weights always give the same bytes (a load
/// → save round trip is byte-identical). Reading validates everything before trusting
/// it — sizes, offsets in bounds and non-overlapping, dtypes, shapes — and converts
/// F16/BF16/F64 to float32.
public struct SafeTensors: Sendable {
  public var tensors: [(name: String, tensor: Tensor)]
  public var metadata: [String: String]

  public init(tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) {
    self.tensors = tensors
    self.metadata = metadata
  }

  public subscript(name: String) -> Tensor? { tensors.first { $0.name == name }?.tensor }

  /// Largest header accepted (the reference implementation's limit).
  static let maxHeaderBytes = 100_000_000

  // MARK: Reading

  public static func read(path: String) throws -> SafeTensors {
    let bytes: [UInt8]
    do {
      bytes = try readFileBytes(path)
    } catch {
      throw SafeTensorsError(path, error.isMissing ? "no such file" : error.description)
    }
    return try decode(bytes, source: path)
  }

  /// The `__metadata__` of a file, reading only its header (a checkpoint's run state
  /// without loading its tensors). The data checksum is not verified: use `read` for that.
  public static func readMetadata(path: String) throws -> [String: String] {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      let exists = FileManager.default.fileExists(atPath: path)
      throw SafeTensorsError(path, exists ? "cannot be read (permissions?)" : "no such file")
    }
    defer { try? handle.close() }
    let prefix = [UInt8]((try? handle.read(upToCount: 8)) ?? Data())
    guard prefix.count == 8 else { throw SafeTensorsError(path, "too short to be a safetensors file") }
    var headerSize = 0
    for i in 0..<8 { headerSize |= Int(prefix[i]) << (8 * i) }
    guard headerSize >= 2, headerSize <= maxHeaderBytes,
      let header = try? handle.read(upToCount: headerSize), header.count == headerSize,
      let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any]
    else { throw SafeTensorsError(path, "the header is not a JSON object (truncated or not safetensors)") }
    var metadata: [String: String] = [:]
    for (k, v) in object["__metadata__"] as? [String: Any] ?? [:] {
      if let s = v as? String { metadata[k] = s }
    }
    metadata[checksumKey] = nil
    return metadata
  }

  public static func decode(_ bytes: [UInt8], source: String = "weights") throws -> SafeTensors {
    func fail(_ reason: String) -> SafeTensorsError { SafeTensorsError(source, reason) }
    guard bytes.count >= 8 else { throw fail("too short to be a safetensors file (\(bytes.count) bytes)") }
    var headerSize = 0
    for i in 0..<8 { headerSize |= Int(bytes[i]) << (8 * i) }
    guard headerSize >= 2, headerSize <= maxHeaderBytes, headerSize <= bytes.count - 8 else {
      throw fail("header length \(headerSize) is invalid for a file of \(bytes.count) bytes (truncated or not safetensors)")
    }
    let headerData = Data(bytes[8..<(8 + headerSize)])
    guard let json = try? JSONSerialization.jsonObject(with: headerData), let header = json as? [String: Any] else {
      throw fail("the header is not a JSON object (corrupt file)")
    }
    let dataStart = 8 + headerSize
    let dataSize = bytes.count - dataStart
    var metadata: [String: String] = [:]
    var entries: [(name: String, dtype: String, shape: [Int], begin: Int, end: Int)] = []
    for (name, value) in header {
      if name == "__metadata__" {
        guard let m = value as? [String: Any] else { throw fail("__metadata__ must be an object of strings") }
        for (k, v) in m {
          guard let s = v as? String else { throw fail("__metadata__[\(k)] must be a string") }
          metadata[k] = s
        }
        continue
      }
      guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
        let shapeAny = info["shape"] as? [Any], let offsetsAny = info["data_offsets"] as? [Any]
      else { throw fail("tensor \(name): entry needs dtype, shape and data_offsets") }
      let shape = try shapeAny.map { v -> Int in
        guard let n = (v as? NSNumber)?.intValue, n >= 0 else { throw fail("tensor \(name): bad shape \(shapeAny)") }
        return n
      }
      guard offsetsAny.count == 2, let begin = (offsetsAny[0] as? NSNumber)?.intValue,
        let end = (offsetsAny[1] as? NSNumber)?.intValue, begin >= 0, end >= begin, end <= dataSize
      else {
        throw fail("tensor \(name): data offsets \(offsetsAny) are outside the \(dataSize) bytes of data (truncated file?)")
      }
      guard let width = dtypeWidth[dtype] else {
        throw fail("tensor \(name): dtype \(dtype) is not supported (F32, F16, BF16, F64, I64, I32)")
      }
      var count = 1
      for d in shape {
        let (m, overflow) = count.multipliedReportingOverflow(by: d)
        guard !overflow, m <= dataSize else { throw fail("tensor \(name): shape \(shape) is larger than the file") }
        count = m
      }
      guard end - begin == count * width else {
        throw fail("tensor \(name): \(end - begin) bytes for shape \(shape) of \(dtype) (expected \(count * width))")
      }
      entries.append((name, dtype, shape, begin, end))
    }
    if let expected = metadata[checksumKey] {
      let actual = checksum(bytes[dataStart...])
      guard actual == expected else {
        throw fail("checksum mismatch (stored \(expected), data \(actual)): the file is damaged (its data changed after it was written)")
      }
    }
    // No two tensors may share bytes.
    let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
    for (a, b) in zip(sorted, sorted.dropFirst()) where b.begin < a.end {
      throw fail("tensors \(a.name) and \(b.name) overlap in the data area")
    }
    var tensors: [(String, Tensor)] = []
    try bytes.withUnsafeBufferPointer { raw in
      for e in entries.sorted(by: { $0.name < $1.name }) {
        let t = Tensor.zeros(e.shape)
        let src = raw.baseAddress! + dataStart + e.begin
        try convert(src, dtype: e.dtype, into: t.data, count: t.count)
        if let bad = t.nonFiniteReport() {
          throw fail("tensor \(e.name) holds non-finite values (\(bad)); the weights are unusable")
        }
        tensors.append((e.name, t))
      }
    }
    metadata[checksumKey] = nil  // recomputed on every write
    return SafeTensors(tensors: tensors, metadata: metadata)
  }

  /// Integer tensors are read as floats too: PyTorch's BatchNorm keeps its step counter
  /// `num_batches_tracked` as int64, so every state_dict saved from PyTorch holds some.
  static let dtypeWidth = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4]

  private static func convert(_ src: UnsafePointer<UInt8>, dtype: String, into dst: UnsafeMutablePointer<Float>, count: Int) throws {
    let raw = UnsafeRawPointer(src)
    switch dtype {
    case "F32":
      for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
    case "F64":
      for i in 0..<count { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
    case "BF16":
      for i in 0..<count {
        let h = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
        dst[i] = Float(bitPattern: UInt32(h) << 16)
      }
    case "F16":
      for i in 0..<count {
        let h = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
        dst[i] = Float(halfBits: h)
      }
    case "I64":
      for i in 0..<count { dst[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
    case "I32":
      for i in 0..<count { dst[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
    default:
      break
    }
  }

  // MARK: Writing

  /// Metadata key of the checksum of the data area that Pretext writes and verifies.
  public static let checksumKey = "pretext.checksum"

  /// The file's bytes (float32 tensors, sorted by name, deterministic), with a checksum
  /// of the data area in the metadata so that a damaged file is refused on load.
  public func encode() -> [UInt8] {
    let ordered = tensors.sorted { $0.name < $1.name }
    var data = [UInt8]()
    data.reserveCapacity(ordered.reduce(0) { $0 + $1.tensor.count * 4 })
    for (_, t) in ordered {
      for i in 0..<t.count {
        let bits = t.data[i].bitPattern.littleEndian
        data.append(UInt8(bits & 0xFF))
        data.append(UInt8((bits >> 8) & 0xFF))
        data.append(UInt8((bits >> 16) & 0xFF))
        data.append(UInt8(bits >> 24))
      }
    }
    var meta = metadata
    meta[Self.checksumKey] = Self.checksum(data[...])
    var entries: [String] = []
    let m = meta.keys.sorted().map { "\(jsonString($0)):\(jsonString(meta[$0]!))" }.joined(separator: ",")
    entries.append("\"__metadata__\":{\(m)}")
    var offset = 0
    for (name, t) in ordered {
      let size = t.count * 4
      let shape = t.shape.map(String.init).joined(separator: ",")
      entries.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + size)]}")
      offset += size
    }
    var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    var out = [UInt8]()
    out.reserveCapacity(8 + header.count + offset)
    for i in 0..<8 { out.append(UInt8((header.count >> (8 * i)) & 0xFF)) }
    out += header
    out += data
    return out
  }

  /// A 64-bit hash of bytes (FNV-1a over 8-byte little-endian words, then the tail), as
  /// 16 hex digits: fast enough for checkpoints of hundreds of megabytes.
  public static func checksum(_ bytes: ArraySlice<UInt8>) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    bytes.withUnsafeBytes { raw in
      let n = raw.count
      var i = 0
      while i + 8 <= n {
        h = (h ^ UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))) &* 0x100_0000_01b3
        i += 8
      }
      while i < n {
        h = (h ^ UInt64(raw[i])) &* 0x100_0000_01b3
        i += 1
      }
    }
    return String(h, radix: 16).leftPadded(to: 16)
  }

  /// Writes atomically: a temporary file in the same folder, flushed to disk, then
  /// renamed over `path` — a crash or a full disk never leaves a half-written file in
  /// place of a good one.
  public func write(to path: String) throws {
    try writeAtomically(encode(), to: path)
  }
}

/// A JSON string literal.
func jsonString(_ s: String) -> String {
  let data = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
  let text = String(decoding: data, as: UTF8.self)
  return String(text.dropFirst().dropLast())
}

public struct SafeTensorsError: Error, CustomStringConvertible, Sendable {
  public let path: String
  public let reason: String
  public init(_ path: String, _ reason: String) {
    self.path = path
    self.reason = reason
  }
  public var description: String { "\(path): \(reason)" }
}

extension Float {
  /// IEEE half-precision bits to Float (subnormals, infinities and NaN included).
  public init(halfBits h: UInt16) {
    let sign = UInt32(h >> 15) << 31
    let exponent = Int((h >> 10) & 0x1F)
    var mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
      if mantissa == 0 {
        self = Float(bitPattern: sign)
        return
      }
      var e = -1
      repeat {
        mantissa <<= 1
        e += 1
      } while mantissa & 0x400 == 0
      self = Float(bitPattern: sign | UInt32(127 - 15 - e) << 23 | (mantissa & 0x3FF) << 13)
    } else if exponent == 31 {
      self = Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
    } else {
      self = Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | mantissa << 13)
    }
  }
}

extension Module {
  /// The module's parameters and buffers as a safetensors file's contents.
  public func safeTensors(metadata: [String: String] = [:]) -> SafeTensors {
    SafeTensors(tensors: stateDict(), metadata: metadata)
  }

  /// Copies weights from `file` into this module's tensors by name. Every tensor of the
  /// module must be present with the same shape; with `strict`, the file may not hold
  /// others. Nothing is changed unless the whole file fits.
  public func load(_ file: SafeTensors, strict: Bool = true, source: String = "weights") throws {
    let state = stateDict()
    let available = Dictionary(file.tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    let missing = state.filter { available[$0.name] == nil }.map(\.name)
    guard missing.isEmpty else {
      throw SafeTensorsError(
        source,
        "missing \(missing.count) tensor(s) the model needs, e.g. \(missing.prefix(3).joined(separator: ", ")) (weights of another architecture?)")
    }
    for (name, t) in state where available[name]!.shape != t.shape {
      throw SafeTensorsError(
        source, "tensor \(name) has shape \(available[name]!.shape) but the model expects \(t.shape) (weights of another configuration?)")
    }
    if strict {
      let known = Set(state.map(\.name))
      let extra = file.tensors.map(\.name).filter { !known.contains($0) }
      guard extra.isEmpty else {
        throw SafeTensorsError(source, "holds \(extra.count) tensor(s) the model does not have, e.g. \(extra.prefix(3).joined(separator: ", "))")
      }
    }
    for (name, t) in state { try t.assign(available[name]!) }
  }
}

extension String {
  func leftPadded(to width: Int) -> String {
    count >= width ? self : String(repeating: "0", count: width - count) + self
  }
}
