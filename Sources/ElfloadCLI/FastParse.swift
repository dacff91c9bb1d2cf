// The launch path's own parser for `elfload [options] PROGRAM ARGS`, without ArgumentParser's cost.
import Loader

/// Parses the common command line in microseconds. Returns nil for anything
/// it does not fully understand, which then goes to ArgumentParser: so the
/// two can differ only in speed, and a test checks that they agree.
public enum FastParse {
  public struct Result {
    public var settings: RunSettings
    public var programIndex: Int
  }

  public static func parse(_ argv: [[UInt8]]) -> Result? {
    var options = RunSettings()
    var prefetch: Int?
    var i = 1
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
    while i < argv.count {
      let arg = text(argv[i])
      if arg == "--" {
        i += 1
        break
      }
      guard arg.hasPrefix("-"), arg != "-" else { break }
      if arg == "--verbose" || arg == "-v" {
        options.verbose = true
        i += 1
      } else if arg == "--stats" {
        options.measurement.summary = true
        i += 1
      } else if ["--mode", "--argv0", "--prefetch", "--stats-json", "--trace"].contains(arg) {
        guard i + 1 < argv.count else { return nil }
        guard set(arg, text(argv[i + 1]), &options, &prefetch) else { return nil }
        i += 2
      } else if ["--mode=", "--argv0=", "--prefetch=", "--stats-json=", "--trace="].contains(
        where: arg.hasPrefix)
      {
        let parts = arg.split(separator: "=", maxSplits: 1)
        guard set(String(parts[0]), parts.count > 1 ? String(parts[1]) : "", &options, &prefetch) else {
          return nil
        }
        i += 1
      } else {
        return nil
      }
    }
    guard i < argv.count else { return nil }
    // Refusals (and their messages) are ArgumentParser's.
    if RunSettings.check(mode: options.mode, prefetch: prefetch) != nil { return nil }
    options.prefetch = prefetch ?? 1
    // A first word that names a subcommand is ArgumentParser's business.
    if i == 1 && ["inspect", "run", "help", "heatmap"].contains(text(argv[i])) { return nil }
    return Result(settings: options, programIndex: i)
  }

  static func set(_ name: String, _ value: String, _ options: inout RunSettings, _ prefetch: inout Int?)
    -> Bool
  {
    switch name {
    case "--prefetch":
      // Only plain decimal digits: anything else ArgumentParser judges.
      guard !value.isEmpty, value.utf8.count <= 4, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
        let n = Int(value)
      else { return false }
      prefetch = n
    case "--mode":
      guard let mode = PagingMode(argument: value) else { return false }
      options.mode = mode
    case "--argv0", "--stats-json", "--trace":
      // ArgumentParser takes no value that looks like an option, nor an empty one.
      guard !value.isEmpty, value == "-" || !value.hasPrefix("-") else { return false }
      switch name {
      case "--argv0": options.argv0 = value
      case "--stats-json": options.measurement.jsonPath = value
      default: options.measurement.tracePath = value
      }
    default:
      return false
    }
    return true
  }
}
