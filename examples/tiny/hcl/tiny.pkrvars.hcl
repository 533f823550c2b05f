# Values for the tiny build (Bento keeps one such file per OS).
password    = "kiln-tiny"
accelerator = "auto"
memory      = 256
