package sr2fhir.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.FhirVersionEnum;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.parser.IParser;
import ca.uhn.fhir.parser.LenientErrorHandler;
import ca.uhn.fhir.rest.server.interceptor.RequestValidatingInterceptor;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.UnknownCodeSystemWarningValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.instance.model.api.IBaseResource;

/**
 * HAPI's request validation against the IG's profiles, read from the compiled IG folder
 * (../shared/ig-package: snapshots/ for the StructureDefinitions, resources/ for the CodeSystems).
 * A request with an error-level issue is refused with 422 and its OperationOutcome.
 *
 * <p>In R4 mode the IG's profiles (R5) are not loaded: R4 core validation, the IG's CodeSystems,
 * and the stand-in cross-version extension definitions of validator/xver-standins (system
 * property {@code sr2fhir.xverStandins}; docs/r4.md says why they exist).
 */
final class IgValidation {
    private IgValidation() {}

    static RequestValidatingInterceptor interceptor(FhirContext ctx, Path igDir) throws IOException {
        PrePopulatedValidationSupport ig = new PrePopulatedValidationSupport(ctx);
        int loaded = 0;
        boolean r4 = ctx.getVersion().getVersion() == FhirVersionEnum.R4;
        for (Path f : r4 ? List.<Path>of() : jsonFiles(igDir.resolve("snapshots"))) {
            ig.addResource(parse(ctx, f));
            loaded++;
        }
        if (r4) {
            String standins = System.getProperty("sr2fhir.xverStandins");
            if (standins == null) {
                throw new IOException("system property sr2fhir.xverStandins (validator/xver-standins) is not set");
            }
            for (Path f : jsonFiles(Path.of(standins))) {
                ig.addResource(parse(ctx, f));
                loaded++;
            }
        }
        for (Path f : jsonFiles(igDir.resolve("resources"))) {
            if (f.getFileName().toString().startsWith("CodeSystem-")) {
                ig.addResource(parse(ctx, f));
                loaded++;
            }
        }
        if (loaded == 0) {
            throw new IOException("no profiles found under " + igDir);
        }
        // DICOM, SNOMED CT and LOINC are not available offline: an unknown code system is a warning.
        UnknownCodeSystemWarningValidationSupport unknown = new UnknownCodeSystemWarningValidationSupport(ctx);
        unknown.setNonExistentCodeSystemSeverity(IValidationSupport.IssueSeverity.WARNING);
        ValidationSupportChain chain = new ValidationSupportChain(
                new DefaultProfileValidationSupport(ctx),
                ig,
                new CommonCodeSystemsTerminologyService(ctx),
                new InMemoryTerminologyServerValidationSupport(ctx),
                new SnapshotGeneratingValidationSupport(ctx),
                unknown);
        FhirInstanceValidator validator = new FhirInstanceValidator(chain);
        RequestValidatingInterceptor interceptor = new RequestValidatingInterceptor();
        String defects = System.getProperty("sr2fhir.knownIgDefects");
        if (defects == null) {
            throw new IOException("system property sr2fhir.knownIgDefects (the known IG defects list) is not set");
        }
        interceptor.addValidatorModule(new KnownIgDefects(validator, Path.of(defects)));
        interceptor.setFailOnSeverity(ResultSeverityEnum.ERROR);
        interceptor.setAddResponseHeaderOnSeverity(null);
        interceptor.setAddResponseOutcomeHeaderOnSeverity(null);
        System.out.println("sr2fhir-hapi: request validation against " + loaded + " IG resources from " + igDir);
        return interceptor;
    }

    private static List<Path> jsonFiles(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.toString().endsWith(".json")).sorted().toList();
        }
    }

    private static IBaseResource parse(FhirContext ctx, Path f) throws IOException {
        // The snapshot generator adds bookkeeping properties (__packageId...) that are not FHIR.
        IParser parser = ctx.newJsonParser().setParserErrorHandler(new LenientErrorHandler(false));
        try (Reader r = Files.newBufferedReader(f)) {
            return parser.parseResource(r);
        }
    }
}
