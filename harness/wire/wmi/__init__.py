"""WMI over DCOM (MS-WMI) wire-level definitions shared by the mock server and the client."""
