import ArgumentParser
import Experiments

struct Options: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Every option of experiment configs and compare files: key, default, accepted values, meaning.",
    discussion: "The same tables as the README's, made from the settings' declarations (Markdown).")

  func run() throws {
    printWhole(OptionsReference.markdown())
  }
}
