"""Sans-IO MS-PSRP codec: fragments (2.2.4), messages (2.2.1, 2.2.2), CLIXML (2.2.5), state machines (3.1, 3.2)."""
