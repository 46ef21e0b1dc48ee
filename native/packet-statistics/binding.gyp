{
  "targets": [
    {
      "target_name": "packet_statistics",
      "sources": ["packet_statistics.c"]
    }
  ]
}
