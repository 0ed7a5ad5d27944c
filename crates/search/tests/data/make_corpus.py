#!/usr/bin/python3
"""Writes corpus.json: realistic torrent names and queries with their expected
results. Expected = names holding every keyword of the query, keywords being
lower-case runs of letters/digits of 3+ characters that are not stop words
(the rule shoal documents; computed here independently of the Rust code).
Run it again only to change the corpus; the test reads the JSON."""
import itertools, json, re

STOP = set("and are but for from had has have her his into its not off our out over she than that the their them then there these they this was were what when which who will with you your".split())

names = []
for v, ed, arch in itertools.product(["11.9.0", "12.5.0"], ["netinst", "DVD-1", "live-gnome", "live-kde", "live-xfce"], ["amd64", "arm64", "i386"]):
    names.append(f"debian-{v}-{arch}-{ed}.iso")
for v, ed, arch in itertools.product(["22.04.4", "24.04"], ["desktop", "live-server"], ["amd64", "arm64"]):
    names.append(f"ubuntu-{v}-{ed}-{arch}.iso")
for flavour, v in itertools.product(["Kubuntu", "Xubuntu", "Lubuntu", "Ubuntu MATE", "Ubuntu Budgie"], ["22.04", "24.04"]):
    names.append(f"{flavour} {v} LTS Desktop amd64")
for ed in ["Workstation", "Server", "KDE Plasma Spin", "Xfce Spin", "Silverblue"]:
    for v in ["39", "40"]:
        names.append(f"Fedora {ed} {v} x86_64 Live ISO")
for ed, v in itertools.product(["Cinnamon", "MATE", "Xfce"], ["21.2", "21.3"]):
    names.append(f"Linux Mint {v} {ed} 64-bit")
for d in ["2024.03.01", "2024.04.01", "2024.05.01"]:
    names.append(f"archlinux-{d}-x86_64.iso")
for v, a in itertools.product(["13.3", "14.0"], ["amd64", "arm64-aarch64"]):
    names.append(f"FreeBSD-{v}-RELEASE-{a}-disc1.iso")
names += ["Kali Linux 2024.1 Installer amd64", "Kali Linux 2024.1 Live amd64", "Tails 6.2 USB image",
          "openSUSE Tumbleweed DVD x86_64 Snapshot20240501", "openSUSE Leap 15.5 DVD x86_64",
          "Alpine Linux 3.19 standard x86_64", "Manjaro KDE 23.1 Vulcan", "Raspberry Pi OS Bookworm Lite arm64",
          "Rocky Linux 9.3 DVD x86_64", "AlmaLinux 9.3 minimal x86_64", "NixOS 23.11 GNOME x86_64",
          "Slackware 15.0 DVD x86_64", "Gentoo install amd64 minimal 20240505", "Void Linux musl x86_64 live",
          "Pop!_OS 22.04 LTS NVIDIA", "elementary OS 7.1 Horus", "Zorin OS 17 Core 64-bit", "EndeavourOS Gemini 2024",
          "Qubes OS 4.2.1 x86_64", "TrueNAS SCALE 24.04", "Proxmox VE 8.2 ISO Installer", "pfSense CE 2.7.2 amd64"]
movies = ["Big Buck Bunny", "Sintel", "Tears of Steel", "Elephants Dream", "Cosmos Laundromat", "Spring",
          "Agent 327 Operation Barbershop", "Caminandes Llamigos", "Glass Half", "Hero", "Charge", "Sprite Fright"]
for m, q in itertools.product(movies, ["1080p", "720p", "4K UHD"]):
    names.append(f"{m} ({q}) Blender Open Movie")
classics = [("Night of the Living Dead", 1968), ("Nosferatu", 1922), ("Metropolis", 1927), ("The General", 1926),
            ("His Girl Friday", 1940), ("Plan 9 from Outer Space", 1957), ("Charade", 1963), ("Detour", 1945),
            ("The Cabinet of Dr Caligari", 1920), ("A Trip to the Moon", 1902), ("Sherlock Jr", 1924),
            ("The Phantom of the Opera", 1925), ("Little Shop of Horrors", 1960), ("Carnival of Souls", 1962),
            ("The Kid", 1921), ("Safety Last", 1923), ("The Gold Rush", 1925), ("Battleship Potemkin", 1925)]
for (t, y), f in itertools.product(classics, ["DVDRip XviD", "1080p restored"]):
    names.append(f"{t} ({y}) {f}")
concerts = [("Grateful Dead", "Barton Hall Cornell University", "1977-05-08"), ("Grateful Dead", "Veneta Oregon", "1972-08-27"),
            ("Phish", "Madison Square Garden", "1997-12-31"), ("String Cheese Incident", "Red Rocks", "2004-07-16"),
            ("Leftover Salmon", "Boulder Theater", "1999-12-31"), ("moe.", "Roseland Ballroom", "2001-04-14"),
            ("Umphrey's McGee", "Vic Theatre Chicago", "2006-01-28"), ("Widespread Panic", "Fox Theatre Atlanta", "2000-12-31")]
for (b, v, d), f in itertools.product(concerts, ["FLAC", "MP3 320"]):
    names.append(f"{b} Live at {v} {d} {f}")
albums = [("Nine Inch Nails", "The Slip"), ("Nine Inch Nails", "Ghosts I-IV"), ("Jonathan Coulton", "Thing a Week One"),
          ("Kevin MacLeod", "Royalty Free Music Collection"), ("Josh Woodward", "Breadcrumbs"),
          ("Brad Sucks", "I Don't Know What I'm Doing"), ("Chris Zabriskie", "Divider"),
          ("Podington Bear", "Solo Piano"), ("Lee Rosevere", "Music for Podcasts"), ("Broke For Free", "Directionless EP")]
for (a, t), f in itertools.product(albums, ["FLAC", "MP3 V0", "OGG"]):
    names.append(f"{a} - {t} [{f}]")
books = [("Jane Austen", "Pride and Prejudice"), ("Herman Melville", "Moby Dick"), ("Leo Tolstoy", "War and Peace"),
         ("Arthur Conan Doyle", "The Adventures of Sherlock Holmes"), ("Mary Shelley", "Frankenstein"),
         ("Bram Stoker", "Dracula"), ("Charles Dickens", "A Tale of Two Cities"), ("Charles Dickens", "Great Expectations"),
         ("Lewis Carroll", "Alice's Adventures in Wonderland"), ("Mark Twain", "Adventures of Huckleberry Finn"),
         ("Homer", "The Odyssey"), ("Fyodor Dostoyevsky", "Crime and Punishment"), ("Oscar Wilde", "The Picture of Dorian Gray"),
         ("H G Wells", "The War of the Worlds"), ("Jules Verne", "Twenty Thousand Leagues Under the Sea")]
for (a, t), f in itertools.product(books, ["EPUB", "Audiobook LibriVox MP3"]):
    names.append(f"{t} - {a} ({f})")
names += [f"Wikipedia enwiki {d} pages-articles-multistream xml bz2" for d in ["20240401", "20240501", "20240601"]]
names += [f"Wikipedia dewiki {d} pages-articles xml bz2" for d in ["20240401", "20240501"]]
names += [f"OpenStreetMap planet {d} osm pbf" for d in ["240401", "240506"]]
names += ["LibreOffice 24.2.3 Linux x86_64 deb", "LibreOffice 24.2.3 Windows x86_64 msi", "Blender 4.1.1 Linux x64",
          "Blender 4.1.1 Windows x64 installer", "GIMP 2.10.38 Windows setup", "Inkscape 1.3.2 AppImage",
          "Krita 5.2.2 Linux AppImage", "OBS Studio 30.1 Windows installer", "VLC media player 3.0.20 Windows 64-bit",
          "Audacity 3.5.1 Linux AppImage", "Godot Engine 4.2.2 Linux x86_64", "Kdenlive 24.02 AppImage",
          "Common Voice Corpus 17.0 English", "LibriSpeech ASR corpus train-clean-100", "MNIST handwritten digits dataset",
          "CIFAR-10 python version", "Project Gutenberg complete DVD 2010", "NASA Apollo 11 mission audio archive",
          "NASA Hubble Ultra Deep Field images TIFF", "Internet Archive 78rpm Great 78 Project sample",
          "Creative Commons photos Wikimedia Commons POTY 2023", "Linux kernel 6.8.9 source tarball",
          "Linux kernel 6.9 source tarball", "FreeBSD ports tree 2024Q2", "Debian source DVD 12.5 set"]
assert len(set(names)) == len(names), "duplicate names"
assert all("|" not in n for n in names)

def kws(t):
    out = []
    for w in re.split(r"[^0-9A-Za-z\u00C0-\uFFFF]+", t.lower()):
        if len(w) >= 3 and w not in STOP and w not in out:
            out.append(w)
    return out

queries = ["debian netinst amd64", "debian live kde", "ubuntu server arm64", "ubuntu 24.04 desktop", "kubuntu",
           "fedora workstation", "fedora spin", "linux mint cinnamon", "archlinux", "freebsd release arm64",
           "kali live", "big buck bunny", "sintel 1080p", "open movie 4k", "blender", "tears steel 720p",
           "night living dead", "nosferatu", "metropolis 1927", "restored 1080p", "grateful dead", "cornell 1977",
           "phish madison square garden", "live flac", "nine inch nails", "ghosts", "kevin macleod",
           "pride prejudice", "sherlock holmes", "dickens", "librivox dracula", "war peace", "wikipedia enwiki",
           "openstreetmap planet", "libreoffice linux", "windows installer", "appimage", "linux kernel source",
           "nasa", "corpus", "dataset", "wonderland alice", "huckleberry finn twain", "jules verne",
           "raspberry", "proxmox", "qubes", "xubuntu 22.04", "gnome", "x86_64 dvd", "minimal", "zzzz nothing",
           "moby dick epub", "odyssey homer", "crime punishment audiobook", "charade", "the kid 1921",
           "red rocks", "2024", "lts desktop"]
out = {"names": names, "queries": []}
for q in queries:
    k = kws(q)
    exp = [i for i, n in enumerate(names) if all(x in kws(n) for x in k)]
    out["queries"].append({"q": q, "expected": exp})
json.dump(out, open("corpus.json", "w"), indent=0)
print(len(names), "names", len(queries), "queries", sum(1 for q in out["queries"] if not q["expected"]), "empty")
