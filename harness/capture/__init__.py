"""Wire evidence as packet captures: pcapng writing, TCP/HTTP synthesis from taps, reading and checking.

``pcapng``  the pcapng / pcap writer (draft-ietf-opsawg-pcapng)
``tcpip``   Ethernet / IPv4 / TCP frame building with checksums
``synth``   tapped exchanges -> a synthesised TCP conversation
``reader``  pcap / pcapng reading and TCP reassembly
``http1``   HTTP/1.1 message extraction from reassembled streams
``check``   WS-Man checks over a capture (``wmh check-pcap``)
"""
