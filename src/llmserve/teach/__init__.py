"""teach: pure logic with no I/O, unit-tested on fed-in data; each module names its theory section."""
