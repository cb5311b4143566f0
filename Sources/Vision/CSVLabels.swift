import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// CSV label files (`path,label` lines, see `LabeledImageFolder.init(csv:options:)`): how
// a line splits into fields, which first line is a header, how classes are ordered; and
// the UTF-8 line reader that image lists (ImageList.swift) share.

/// `path,label` lines (see `LabeledImageFolder.init(csv:options:)`).
enum CSVLabels {
  /// Whether a dataset path names a CSV label file (`.csv`, any case).
  static func isCSVName(_ path: String) -> Bool { path.lowercased().hasSuffix(".csv") }

  struct Entry {
    let line: Int
    let path: String
    let label: String
  }

  static func parse(path: String) throws -> [Entry] {
    var info = stat()
    guard stat(path, &info) == 0 else {
      throw VisionError(
        kind: .notFound, path: path,
        reason: "no such file; expected a CSV of `path,label` lines (paths relative to its folder)")
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
      throw VisionError(
        kind: .wrongType, path: path, reason: "is not a file; expected a CSV of `path,label` lines")
    }
    var entries: [Entry] = []
    var sawFirst = false
    for (number, line) in try textLines(path, notUTF8: "is not UTF-8 text; save the CSV as UTF-8") {
      if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
      let fields: [String]
      do {
        fields = try splitFields(line)
      } catch let reason as CSVFieldError {
        throw VisionError(kind: .invalidCSV, path: path, reason: "line \(number): \(reason.message)")
      }
      let isFirst = !sawFirst
      sawFirst = true
      guard fields.count == 2 else {
        if isFirst && !(fields.first.map(FolderScan.isImageName) ?? false) { continue }  // a header
        throw VisionError(
          kind: .invalidCSV, path: path,
          reason: "line \(number): expected 2 fields `path,label`, found \(fields.count): \(line)")
      }
      if isFirst && !FolderScan.isImageName(fields[0]) { continue }  // a header such as path,label
      guard !fields[0].isEmpty, !fields[1].isEmpty else {
        throw VisionError(
          kind: .invalidCSV, path: path,
          reason: "line \(number): \(fields[0].isEmpty ? "the path" : "the label") is empty; expected `path,label`")
      }
      var file = Substring(fields[0])
      while file.hasPrefix("./") { file = file.dropFirst(2) }
      entries.append(Entry(line: number, path: String(file), label: fields[1]))
    }
    return entries
  }

  /// The lines of a UTF-8 text file with their numbers (from 1), without line endings
  /// (`\n`, `\r\n` or a lone `\r` before `\n`) or a leading byte-order mark; shared by
  /// CSV label files and image lists.
  static func textLines(_ path: String, notUTF8: String) throws -> [(number: Int, line: Substring)] {
    let bytes: [UInt8]
    do {
      bytes = try ImageFile.readFile(path)
    } catch let error as VisionError {
      throw VisionError(kind: .unreadable, path: path, reason: error.reason)
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw VisionError(kind: .invalidCSV, path: path, reason: notUTF8)
    }
    // "\r\n" is a single Character in Swift, so it is a separator of its own.
    let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
    return lines.enumerated().map { offset, raw in
      var line = Substring(raw)
      if line.hasSuffix("\r") { line.removeLast() }
      if offset == 0 && line.hasPrefix("\u{FEFF}") { line.removeFirst() }  // byte-order mark
      return (offset + 1, line)
    }
  }

  struct CSVFieldError: Error {
    let message: String
  }

  /// Comma-separated fields, each optionally double-quoted (`""` is a quote inside
  /// quotes); unquoted fields are trimmed of surrounding spaces and tabs.
  static func splitFields(_ line: Substring) throws -> [String] {
    var fields: [String] = []
    var current = ""
    var quoted = false
    var inQuotes = false
    var chars = line.makeIterator()
    var pending: Character? = nil
    func next() -> Character? {
      if let p = pending {
        pending = nil
        return p
      }
      return chars.next()
    }
    func finish() {
      fields.append(quoted ? current : current.trimmingCharacters(in: .whitespaces))
      current = ""
      quoted = false
    }
    while let c = next() {
      if inQuotes {
        if c == "\"" {
          if let after = next() {
            if after == "\"" {
              current.append("\"")
            } else {
              inQuotes = false
              pending = after
            }
          } else {
            inQuotes = false
          }
        } else {
          current.append(c)
        }
      } else if c == "," {
        finish()
      } else if c == "\"" && current.allSatisfy({ $0 == " " || $0 == "\t" }) && !quoted {
        current = ""
        quoted = true
        inQuotes = true
      } else if quoted {
        guard c == " " || c == "\t" else {
          throw CSVFieldError(message: "unexpected text after a closing quote: \(line)")
        }
      } else {
        current.append(c)
      }
    }
    guard !inQuotes else { throw CSVFieldError(message: "a quoted field is not closed: \(line)") }
    finish()
    return fields
  }

  /// Numeric order when every label is a non-negative integer, byte-wise otherwise.
  static func sortedClasses(_ labels: Set<String>) -> [String] {
    let all = Array(labels)
    if all.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (48...57).contains($0) } }) {
      return all.sorted { a, b in
        let (x, y) = (a.drop { $0 == "0" }, b.drop { $0 == "0" })
        return x.count != y.count ? x.count < y.count : (x == y ? a < b : x < y)
      }
    }
    return FolderScan.sortedBytewise(all)
  }
}
