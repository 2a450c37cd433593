"""The benchmark's scenarios, one module each; ``SCENARIOS`` maps the number ``--scenario`` takes to its ``run``."""

from bench.scenarios import busy_room, dms, fanout, idle, layers, notify, storm, year

SCENARIOS = {
    1: fanout.run,
    2: notify.run,
    3: dms.run,
    4: idle.run,
    5: layers.run,
    6: busy_room.run,
    7: year.run,
    8: storm.run,
}
