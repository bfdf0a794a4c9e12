"""The virtual printer over real loopback TCP: status, held data, process ids, faults."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from PIL import Image

from wix_printer.devprinter import VirtualPrinter
from wix_printer.devprinter.wire import CLEAR, CUT, ESC_INIT, RawClient, dle_eot, id_reply, job, process_id

Connect = Callable[[], Awaitable[RawClient]]


def files(folder: Path, pattern: str = "*") -> list[str]:
    return sorted(p.name for p in folder.glob(pattern))


async def test_receipt_lands_as_bin_png_txt(printer: VirtualPrinter, connect: Connect, out_dir: Path) -> None:
    client = await connect()
    data = job("Grüße aus der Küche: 12,50 €")
    await client.send(data)
    [printed] = await printer.wait_for_jobs(1)
    assert printed.name == "0001"
    assert (out_dir / "0001.bin").read_bytes() == data
    assert (out_dir / "0001.txt").read_text(encoding="utf-8") == "Grüße aus der Küche: 12,50 €\n"
    with Image.open(out_dir / "0001.png") as png:
        assert png.width == 576
    assert files(out_dir) == ["0001.bin", "0001.png", "0001.txt"], "temp files left behind"


@pytest.mark.parametrize(
    ("page", "codec"),
    [(16, "cp1252"), (19, "cp858")],
    ids=["WPC1252", "PC858"],
)
async def test_umlauts_and_euro_per_code_page(
    printer: VirtualPrinter, connect: Connect, page: int, codec: str
) -> None:
    client = await connect()
    text = "ÄÖÜ äöü ß – 3,00 €" if codec == "cp1252" else "ÄÖÜ äöü ß 3,00 €"
    await client.send(job(text, page=page, codec=codec))
    [printed] = await printer.wait_for_jobs(1)
    assert printed.text == text + "\n"


async def test_esc_at_resets_code_page_to_pc437(printer: VirtualPrinter, connect: Connect) -> None:
    client = await connect()
    await client.send(b"\x1bt\x10\x80\n" + ESC_INIT + b"\x80\n" + CUT)
    [printed] = await printer.wait_for_jobs(1)
    assert printed.text == "€\nÇ\n"


async def test_jobs_are_numbered_in_order(printer: VirtualPrinter, connect: Connect, out_dir: Path) -> None:
    client = await connect()
    await client.send(job("eins") + job("zwei") + job("drei"))
    jobs = await printer.wait_for_jobs(3)
    assert [j.name for j in jobs] == ["0001", "0002", "0003"]
    assert [(out_dir / f"{j.name}.txt").read_text() for j in jobs] == ["eins\n", "zwei\n", "drei\n"]


STATUS = {
    None: (0x12, 0x12, 0x12, 0x12),
    "paper-end": (0x1A, 0x32, 0x12, 0x7E),
    "paper-near-end": (0x12, 0x12, 0x12, 0x1E),
    "cover-open": (0x1A, 0x16, 0x12, 0x12),
    "offline": (0x1A, 0x12, 0x12, 0x12),
}


@pytest.mark.parametrize("fault", list(STATUS), ids=[str(f) for f in STATUS])
async def test_dle_eot_answers_per_fault(
    printer: VirtualPrinter, connect: Connect, fault: str | None
) -> None:
    if fault:
        printer.set_fault(fault)
    client = await connect()
    answers = tuple([await client.query(n) for n in (1, 2, 3, 4)])
    assert answers == STATUS[fault]
    for byte in answers:
        assert byte & 0b1001_0011 == 0b0001_0010, "fixed bits 0xx1xx10"


@pytest.mark.parametrize(("fault", "expected"), [(None, 0x00), ("paper-near-end", 0x03), ("paper-end", 0x0F)])
async def test_gs_r_paper_status(
    printer: VirtualPrinter, connect: Connect, fault: str | None, expected: int
) -> None:
    if fault:
        printer.set_fault(fault)
    client = await connect()
    await client.send(b"\x1dr\x01")
    assert await client.recv(1) == bytes([expected])


async def test_gs_r_waits_for_preceding_data(printer: VirtualPrinter, connect: Connect) -> None:
    printer.set_fault("slow", 0.5)
    client = await connect()
    started = time.monotonic()
    await client.send(job("x" * 1000) + b"\x1dr\x01")
    assert await client.recv(1) == b"\x00"
    assert time.monotonic() - started >= 0.4
    assert len(printer.jobs) == 1


async def test_asb_reports_now_and_on_every_change(printer: VirtualPrinter, connect: Connect) -> None:
    client = await connect()
    await client.send(b"\x1da\xff")
    assert await client.recv(4) == b"\x10\x00\x00\x00"
    printer.set_fault("paper-near-end")
    assert await client.recv(4) == b"\x10\x00\x03\x00"
    printer.set_fault("paper-end")
    assert await client.recv(4) == b"\x18\x00\x0f\x00"
    printer.clear_fault("paper-end")
    printer.clear_fault("paper-near-end")
    assert await client.recv(4) == b"\x10\x00\x03\x00"
    assert await client.recv(4) == b"\x10\x00\x00\x00"
    printer.set_fault("cover-open")
    assert await client.recv(4) == b"\x38\x00\x00\x00"
    printer.clear_fault("cover-open")
    assert await client.recv(4) == b"\x10\x00\x00\x00"
    printer.set_fault("offline")
    assert await client.recv(4) == b"\x18\x00\x00\x00"
    printer.clear_fault("offline")
    assert await client.recv(4) == b"\x10\x00\x00\x00"
    printer.set_fault("slow", 1.0)  # not a status change: no ASB
    await client.send(b"\x1da\x00\x1dr\x01")
    assert await client.recv(1) == b"\x00"  # GS r answers after GS a 0 took effect
    printer.set_fault("paper-end")
    await client.expect_silence()


async def test_process_id_comes_back_after_the_job_printed(
    printer: VirtualPrinter, connect: Connect, out_dir: Path
) -> None:
    client = await connect()
    await client.send(job("Pizza") + process_id(b"0001"))
    assert await client.recv(7) == id_reply(b"0001")
    # The id promises "printed": the files must already be there when it arrives.
    assert (out_dir / "0001.txt").read_text() == "Pizza\n"
    assert (out_dir / "0001.png").exists()


@pytest.mark.parametrize("fault", ["paper-end", "cover-open", "offline"])
async def test_stopped_printer_holds_data_and_prints_it_once_after_recovery(
    printer: VirtualPrinter, connect: Connect, out_dir: Path, fault: str
) -> None:
    printer.set_fault(fault)
    client = await connect()
    stream = job("Erster Bon") + process_id(b"A001") + job("Zweiter Bon") + process_id(b"A002")
    await client.send(stream)
    await printer.wait_for_received(len(stream))
    # Real-time status still answers while printing is held ...
    assert await client.query(1) == 0x1A
    # ... but no process id and no file until the fault clears.
    await client.expect_silence(0.4)
    assert printer.jobs == []
    assert files(out_dir) == []
    # ESC @ and ESC t before the first text need no paper and have run; the rest waits.
    assert printer.held_bytes == len(stream) - 5

    printer.clear_fault(fault)
    assert await client.recv(14) == id_reply(b"A001") + id_reply(b"A002")
    assert [j.text for j in printer.jobs] == ["Erster Bon\n", "Zweiter Bon\n"]
    assert b"".join(j.raw for j in printer.jobs) + process_id(b"A002") == stream
    assert files(out_dir, "*.txt") == ["0001.txt", "0002.txt"]
    await client.expect_silence()


async def test_paper_end_in_the_middle_of_a_job(printer: VirtualPrinter, connect: Connect) -> None:
    client = await connect()
    await client.send(ESC_INIT + b"\x1bt\x10Zeile 1\nZeile 2\n")
    await printer.wait_for_received(21)
    await printer.wait_until_idle()
    printer.set_fault("paper-end")
    await client.send(b"Zeile 3\n" + CUT + process_id(b"B001"))
    await client.expect_silence(0.3)
    assert printer.jobs == []
    printer.clear_fault("paper-end")
    assert await client.recv(7) == id_reply(b"B001")
    [printed] = printer.jobs
    assert printed.text == "Zeile 1\nZeile 2\nZeile 3\n"


async def test_process_id_only_after_paper_is_back_on_a_new_connection(
    printer: VirtualPrinter, connect: Connect
) -> None:
    printer.set_fault("paper-end")
    first = await connect()
    await first.send(job("Spät") + process_id(b"C001"))
    await printer.wait_for_received(len(job("Spät")) + 11)
    await first.close()
    second = await connect()
    assert await second.query(4) == 0x7E
    printer.clear_fault("paper-end")
    # The printer kept the data across the dropped link and reports the late id to the new session.
    assert await second.recv(7) == id_reply(b"C001")
    assert [j.text for j in printer.jobs] == ["Spät\n"]


async def test_dle_dc4_clears_held_data_and_its_process_id(
    printer: VirtualPrinter, connect: Connect, out_dir: Path
) -> None:
    printer.set_fault("paper-end")
    client = await connect()
    await client.send(job("verworfen") + process_id(b"D001"))
    await client.send(CLEAR)
    assert await client.recv(3) == b"\x37\x25\x00"
    assert printer.held_bytes == 0
    printer.clear_fault("paper-end")
    await client.expect_silence(0.3)
    assert printer.jobs == []
    await client.send(job("NACHDRUCK – evtl. doppelt\nneu") + process_id(b"D002"))
    assert await client.recv(7) == id_reply(b"D002")
    [printed] = printer.jobs
    assert printed.text == "NACHDRUCK – evtl. doppelt\nneu\n"
    assert "verworfen" not in (out_dir / "0001.txt").read_text()


async def test_dle_dc4_drops_the_unprinted_line_buffer(printer: VirtualPrinter, connect: Connect) -> None:
    client = await connect()
    await client.send(ESC_INIT + b"printed\nhalf a line")
    await printer.wait_for_received(len(ESC_INIT) + 19)
    await printer.wait_until_idle()
    await client.send(CLEAR)
    assert await client.recv(3) == b"\x37\x25\x00"
    await client.send(b"rest\n" + CUT)
    [printed] = await printer.wait_for_jobs(1)
    assert printed.text == "printed\nrest\n"


async def test_cut_after_resets_the_connection_once(printer: VirtualPrinter, connect: Connect) -> None:
    printer.set_fault("cut-after", 20)
    client = await connect()
    payload = job("x" * 200) + process_id(b"E001")
    with contextlib.suppress(ConnectionError):  # the reset may already hit the send
        await client.send(payload)
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await client.recv(7)
    assert printer.bytes_received == 20
    assert printer.faults.cut_after is None, "one-shot"
    # The printer survives and the next session works normally.
    again = await connect()
    assert await again.query(1) == 0x12
    await again.send(job("danach") + process_id(b"E002"))
    assert await again.recv(7) == id_reply(b"E002")
    # The 20 bytes that did arrive were printed as a partial line on the same paper.
    assert printer.jobs[-1].text.endswith("danach\n")


async def test_commands_split_across_reads(printer: VirtualPrinter, connect: Connect) -> None:
    client = await connect()
    stream = (
        job("Käse €")
        + b"\x1d(k\x04\x001A2\x00\x1d(k\x03\x001C\x06\x1d(k\x08\x001P0hello\x1d(k\x03\x001Q0"
        + CUT
        + process_id(b"F001")
    )
    for i in range(len(stream)):
        await client.send(stream[i : i + 1])
        if i % 7 == 0:
            await asyncio.sleep(0.002)  # let single bytes arrive as separate reads
        if stream[i - 1 : i + 1] == b"\x1b@":  # between commands, not inside one
            assert await client.query(1) == 0x12
    assert await client.recv(7) == id_reply(b"F001")
    assert [j.text for j in printer.jobs] == ["Käse €\n", "[QR: hello]\n"]


async def test_silent_printer_prints_but_never_answers(printer: VirtualPrinter, connect: Connect) -> None:
    printer.set_fault("silent")
    client = await connect()
    await client.send(b"\x1da\xff" + dle_eot(1) + b"\x1dr\x01" + job("still") + process_id(b"G001"))
    await printer.wait_for_jobs(1)
    await client.send(CLEAR)
    await client.expect_silence(0.4)
    printer.clear_fault("silent")
    assert await client.query(1) == 0x12


async def test_no_process_id_still_prints_and_answers_status(
    printer: VirtualPrinter, connect: Connect
) -> None:
    printer.set_fault("no-process-id")
    client = await connect()
    await client.send(job("ohne id") + process_id(b"H001"))
    await printer.wait_for_jobs(1)
    await client.expect_silence(0.3)
    assert await client.query(4) == 0x12


async def test_slow_printing(printer: VirtualPrinter, connect: Connect) -> None:
    printer.set_fault("slow", 1.0)
    client = await connect()
    data = job("y" * 500)
    started = time.monotonic()
    await client.send(data + process_id(b"I001"))
    assert await client.recv(7, timeout=3) == id_reply(b"I001")
    assert time.monotonic() - started >= len(data) / 1024 * 0.9


async def test_second_connection_waits_for_the_first(printer: VirtualPrinter, connect: Connect) -> None:
    first = await connect()
    assert await first.query(1) == 0x12
    second = await connect()
    await second.send(dle_eot(1))
    await second.expect_silence(0.3)
    await first.close()
    assert await second.recv(1) == b"\x12"


async def test_unknown_bytes_do_not_stop_the_printer(printer: VirtualPrinter, connect: Connect) -> None:
    client = await connect()
    await client.send(ESC_INIT + b"\x1b\xfe\x1d\xfe\x1c\xfe\x10\xfe\x01\x02ok\n" + CUT)
    [printed] = await printer.wait_for_jobs(1)
    assert printed.text.endswith("ok\n")
    assert await client.query(1) == 0x12


async def test_numbering_continues_across_restarts(out_dir: Path) -> None:
    await asyncio.to_thread(out_dir.mkdir)
    (out_dir / "0007.txt").write_text("old\n")
    for expected in ("0008", "0009"):
        async with VirtualPrinter(out_dir) as vp:
            client = await RawClient.open(vp.port)
            await client.send(job("neu"))
            [printed] = await vp.wait_for_jobs(1)
            assert printed.name == expected
            await client.close()
    assert files(out_dir, "*.txt") == ["0007.txt", "0008.txt", "0009.txt"]


async def test_in_memory_printer_without_out_dir() -> None:
    async with VirtualPrinter() as vp:
        client = await RawClient.open(vp.port)
        await client.send(job("nur im Speicher") + process_id(b"J001"))
        assert await client.recv(7) == id_reply(b"J001")
        assert vp.jobs[0].txt_path is None
        assert vp.jobs[0].text == "nur im Speicher\n"
        await client.close()


async def test_unknown_fault_name_is_rejected(printer: VirtualPrinter) -> None:
    with pytest.raises(KeyError):
        printer.set_fault("jammed")
    with pytest.raises(ValueError, match="cut-after"):
        printer.set_fault("cut-after", -1)
    printer.set_fault("paper_end")  # underscores are accepted too
    assert printer.faults.paper_end


async def test_full_receive_buffer_stops_reading_until_printing_resumes() -> None:
    # In memory: a PNG of 20000 lines would only measure Pillow.
    async with VirtualPrinter(receive_buffer=4096) as vp:
        vp.set_fault("paper-end")
        client = await RawClient.open(vp.port)
        lines = b"".join(b"Zeile %05d\n" % i for i in range(20000))
        stream = ESC_INIT + lines + CUT + process_id(b"N001")
        sender = asyncio.create_task(client.send(stream))
        await vp.wait_for_received(4096)
        await asyncio.sleep(0.2)
        assert vp.held_bytes < 4096 + 65536, "the printer keeps reading although its buffer is full"
        assert vp.bytes_received < len(stream)
        vp.clear_fault("paper-end")
        await sender
        assert await client.recv(7, timeout=10) == id_reply(b"N001")
        [printed] = vp.jobs
        assert printed.raw == ESC_INIT + lines + CUT
        assert printed.text.count("\n") == 20000
        await client.close()
