from autosize.cli import entry

entry()  # as the console script: exits with main's code
