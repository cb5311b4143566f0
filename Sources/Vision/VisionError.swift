import Foundation

// The one error type of the Vision module: every failure to open a dataset, read or
// write an image or IDX file, or use a decoded-image cache is a `VisionError`. Callers
// that only report it print `description`; callers that react to a cause match `kind`
// (a missing file, a truncated image, a failing cache).

/// Why a dataset, file or cache could not be used. `description` reads "`path`: `reason`"
/// (just the reason when no file is involved, e.g. bytes decoded from memory), e.g.
/// `bad.png: not a PNG file (bad signature)`; the reason says what to do.
public struct VisionError: Error, CustomStringConvertible, LocalizedError, Sendable, Hashable {
  public enum Kind: Sendable, Hashable {
    // Datasets (folders, image lists, CSV label files, imports).

    /// The folder or file does not exist.
    case notFound
    /// A folder was expected and something else is there (or the reverse).
    case wrongType
    /// The folder holds no usable images (or a class folder or list is empty).
    case empty
    /// A dataset's file or folder cannot be used (permissions, a corrupt image, or in
    /// strict mode any rejected file).
    case unreadable
    /// A CSV label file or image list is malformed; the reason names the line.
    case invalidCSV
    /// An imported dataset's source files are missing.
    case invalidSource

    // Any file.

    /// Reading, creating, writing, renaming or removing a file failed, or its gzip
    /// stream is corrupt.
    case io

    // Image files (PNG, JPEG).

    /// Empty input or a wrong signature: not a PNG at all (or a file of neither format
    /// whose name claims no JPEG).
    case notPNG
    /// Empty input or no start-of-image marker: not a JPEG at all (or a file of neither
    /// format named like a JPEG).
    case notJPEG
    /// The data ends before the image does (partial download or copy).
    case truncated
    /// The decoder rejected the stream (CRC mismatch, invalid header, damaged data).
    case corrupt
    /// width * height exceeds `ImageDecodeOptions.maxPixels`; nothing was allocated.
    case tooLarge
    /// A valid file of a variant that is not read: a JPEG this build of libjpeg cannot
    /// decode (12-bit samples, lossless), an IDX type code other than unsigned byte.
    case unsupported
    /// The call itself was wrong (bad image shape, option, compression level).
    case invalidArgument
    case outOfMemory

    // IDX files (IDX.swift).

    /// The header is not an IDX header (bad magic bytes, zero dimensions).
    case badMagic
    /// The data length does not match the dimensions (truncated or trailing bytes).
    case wrongLength
    /// The array is valid IDX but not what the caller expected (dimensions, counts).
    case unexpectedShape

    // Decoded-image caches (DecodedImageCache.swift).

    /// The cache itself cannot be used (created, locked, mapped, written, or it is
    /// incomplete where a complete one is required): no one image is at fault, so
    /// loaders stop rather than skip the image.
    case cache
  }

  public let kind: Kind
  /// The file or folder involved, when there is one.
  public let path: String?
  /// What went wrong and what to do, without the path.
  public let reason: String

  public init(kind: Kind, path: String?, reason: String) {
    self.kind = kind
    self.path = path
    self.reason = reason
  }

  public var description: String { path.map { "\($0): \(reason)" } ?? reason }
  public var errorDescription: String? { description }
}
