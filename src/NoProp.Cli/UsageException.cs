namespace NoProp.Cli;

/// <summary>Bad usage: an unknown option, a missing or malformed value, a number out of range. Exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
